"""`python -m coalition` runs the CLI."""

from coalition.console import main

main()
