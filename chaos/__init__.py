"""The chaos run (`make chaos`): mixed load on both services while a nemesis injects overlapping faults,
then heal, and a checker that says whether anything was lost, doubled or left half-done.

system.py starts what the run owns (a RabbitMQ node, a PostgreSQL instance, proxies, both services);
load.py is the clients and the book of what they were answered; faults.py the nemesis and its menu;
checker.py the invariants; ledger.py one line per fault with what the system did meanwhile; run.py ties
them together; `python -m chaos` is the command line.
"""
