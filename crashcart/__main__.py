"""`python -m crashcart`: the same entry point as the `crashcart` console script."""

from crashcart.cli import main

raise SystemExit(main())
