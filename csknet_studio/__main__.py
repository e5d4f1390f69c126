from csknet_studio.cli import main

raise SystemExit(main())
