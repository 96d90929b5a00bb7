"""``python -m dubai_segmenter``: the engine's command line (see engine/cli.py)."""
from dubai_segmenter.engine.cli import main

raise SystemExit(main())
