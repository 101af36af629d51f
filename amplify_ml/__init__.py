"""amplify_ml: predictive services from a partner's data pack.

LightGBM's OpenMP threads spin while they wait for work by default. When other processes
share the cores (tests in parallel, the API beside a training run, a notebook), the spinning
threads starve each other: a fit measured here went from 2 s to over 3 minutes with two
busy neighbours. Waiting passively costs little when the machine is idle and avoids that,
so it is the default unless ``OMP_WAIT_POLICY`` is already set (set it before importing
amplify_ml to choose otherwise).
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
