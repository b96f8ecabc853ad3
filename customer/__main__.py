from shared.serve import serve

if __name__ == "__main__":
    serve("customer", default_port=3000)
