"""Dead letters as data: the mover that takes them off the queue into the `dead_letters` table
(mover.py), its statements (repository.py), what an operator does with them (actions.py), and the ways
in: `/ops` routes and the console page (handlers.py, console.html), `customer-ops` (cli.py)."""
