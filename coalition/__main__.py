"""`python -m coalition` runs the CLI."""

from coalition.cli import main

main()
