"""python -m perennial_hack.node build | gen | up [--name N] | down [--name N]

build  the kubelet and the pause image into the cache (a no-op when cached)
gen    regenerate node/gomod/kubelet after editing hack/versions.env
up     start a real node for the running local cluster N, with the built images loaded
down   stop it (containers, mounts and the bridge go too)
"""

from __future__ import annotations

import sys

from perennial_hack.node.cli import main

sys.exit(main())
