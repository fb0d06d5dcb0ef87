"""`python -m amzigo_lab.cli ...`: the `amzigo` command where its console script is not on the
PATH (e.g. a source checkout put first with PYTHONPATH)."""

from amzigo_lab.cli import main

if __name__ == "__main__":
    main(prog_name="amzigo")
