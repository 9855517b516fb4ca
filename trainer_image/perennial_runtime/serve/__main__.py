from perennial_runtime.serve.cli import main

raise SystemExit(main())
