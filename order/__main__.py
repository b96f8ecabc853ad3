from shared.serve import serve

if __name__ == "__main__":
    serve("order", default_port=3001)
