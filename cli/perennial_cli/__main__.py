"""python -m perennial_cli: the same as the `perennial` command."""

from perennial_cli.main import main

main()
