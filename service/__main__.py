"""`python -m service` runs the glassbox CLI."""

from service.cli import main

main()
