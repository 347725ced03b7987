"""Fault injection for tests/distributed, in processes the tests start: Python imports
``sitecustomize`` at start-up from any folder on ``PYTHONPATH``, so every torchrun rank and
every ``--workers`` process gets the fault without a hook in snn2hw. Inert unless
``SNN2HW_TEST_FAULT`` is set:

- ``input:BACKEND``: backend BACKEND computes with one input spike flipped in the sample
  whose content is sample 1 of ``fixed_inputs()`` (tests/pipeline/fault_injection.py);
- ``raise:RANK``: on rank RANK (the ``RANK`` variable; 0 when unset) every backend lookup
  raises RuntimeError;
- ``kill:RANK``: rank RANK kills itself (SIGKILL) when it looks up a backend;
- ``hang:RANK``: rank RANK sleeps for an hour when it looks up a backend (alive, its
  heartbeat still beating, but stuck).
"""

import os

_SPEC = os.environ.get("SNN2HW_TEST_FAULT")
if _SPEC:
    import signal
    import sys

    from snn2hw.backends import registry

    _kind, _arg = _SPEC.split(":")
    _real = registry.get
    if _kind == "input":
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "pipeline"))
        from fault_injection import fixed_inputs, registry_with_fault

        registry.get = registry_with_fault(_real, _arg, "input", fixed_inputs())
    else:
        def _get(name: str, _real=_real):
            if os.environ.get("RANK", "0") == _arg:
                if _kind == "raise":
                    raise RuntimeError(f"injected fault on rank {_arg}")
                if _kind == "hang":
                    import time

                    time.sleep(3600)
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(name)

        registry.get = _get
