"""AVSync-AC: the paper's automatic curation pipeline (paper §3, "Automatic Curation").

Scene cuts (PySceneDetect), 3 s windows at 0.5 s stride inside each scene, six measurements per
window (raw pixel difference, image-semantics difference, audio peak, IA, IT, P_sync), thresholds
from a curated reference set (:func:`calibrate`), kept windows merged per video, classes under
``min_per_class`` dropped, and the result written in the AVSync15 release layout
(:func:`curate`). Runs in-process or as Ray Data stages; resumable per block. See
``docs/curation.md``.

Needs the ``curate`` extra (``pip install 'avsync-bench[curate]'``: PySceneDetect, pyarrow,
pandas, Ray).
"""

from avsync_bench.curation.networks import NetworkSpec
from avsync_bench.curation.run import calibrate, curate
from avsync_bench.curation.settings import MEASUREMENTS, CurationSettings, Thresholds

__all__ = ["calibrate", "curate", "CurationSettings", "Thresholds", "NetworkSpec", "MEASUREMENTS"]
