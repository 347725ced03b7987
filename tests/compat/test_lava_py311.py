import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from snn2hw.compat.lava_py311 import rewrite_instance_defaults


def test_rewrite_turns_instance_defaults_into_default_factories():
    src = textwrap.dedent(
        '''
        """doc"""
        from __future__ import annotations
        from dataclasses import dataclass

        @dataclass
        class Enc:
            n: int = 1

        @dataclass
        class Pair:
            x: Enc = Enc()
            y: int = 3
        '''
    )
    tree = ast.parse(src)
    assert rewrite_instance_defaults(tree)
    ns: dict = {}
    exec(compile(tree, "<test>", "exec"), ns)
    a, b = ns["Pair"](), ns["Pair"]()
    assert a.x == ns["Enc"]() and a.x is not b.x  # a fresh instance per object
    assert a.y == 3


def test_rewrite_leaves_other_sources_alone():
    tree = ast.parse("class A:\n    x: int = int('3')\n")
    assert not rewrite_instance_defaults(tree)


def test_lava_imports_and_runs_fixed_point_lif_on_this_python():
    # A fresh interpreter proves the hook is what makes the import work.
    code = textwrap.dedent(
        """
        from snn2hw.compat.lava_py311 import import_lava
        import_lava()
        import numpy as np
        from lava.proc.lif.process import LIF
        from lava.proc.dense.process import Dense
        from lava.proc.io.source import RingBuffer
        from lava.proc.monitor.process import Monitor
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        src = RingBuffer(data=np.array([[1, 1, 1, 0, 0, 0]]))
        d = Dense(weights=np.array([[100]]), weight_exp=0)
        lif = LIF(shape=(1,), du=4095, dv=0, vth=150, bias_mant=0, bias_exp=0)
        src.s_out.connect(d.s_in); d.a_out.connect(lif.a_in)
        m = Monitor(); m.probe(lif.v, 6)
        lif.run(condition=RunSteps(num_steps=6), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        v = m.get_data()[lif.name]["v"].ravel().astype(int).tolist()
        lif.stop()
        print(v)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # frame 0 arrives at Lava step 2 (one-step Dense delay): 100<<6 = 6400; two inputs
    # (12800 > 150<<6 = 9600) spike and reset to 0.
    assert out.stdout.strip().splitlines()[-1] == "[0, 6400, 0, 6400, 6400, 6400]"


def test_missing_lava_gives_one_line_install_hint():
    code = textwrap.dedent(
        """
        import sys
        sys.modules['lava'] = None  # simulate an environment without lava-nc
        from snn2hw.compat.lava_py311 import import_lava, LavaMissingError
        try:
            import_lava()
        except LavaMissingError as e:
            print('HINT', e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HINT Lava is not installed" in out.stdout, out.stdout + out.stderr


def test_lava_imports_after_the_multiprocessing_start_method_was_fixed():
    code = textwrap.dedent(
        """
        import multiprocessing as mp
        mp.get_start_method()  # fixes the context as a side effect, as many libraries do
        from snn2hw.compat.lava_py311 import import_lava
        import_lava()
        from lava.proc.lif.process import LIF  # noqa: F401
        print("OK", mp.get_start_method())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK fork" in out.stdout


def test_running_lava_leaves_the_programs_start_method_alone():
    """Importing and running Lava gives its actors fork inside the run only: a program that
    chose 'spawn' (e.g. after CUDA initialisation) keeps it, and one that chose none still
    has none; the spikes equal torch integer mode."""
    code = textwrap.dedent(
        """
        import sys
        import multiprocessing as mp
        import numpy as np
        sys.path.insert(0, "tests/backends")
        from qgraph_builders import dense, lif, make_graph
        from snn2hw.quant.qgraph import InputNode
        from snn2hw.backends import lava, torch_int
        if sys.argv[1] != "none":
            mp.set_start_method(sys.argv[1])
        g = make_graph([InputNode("in", (4,)), dense("d", np.full((3, 4), 40)),
                        lif("l", 3, vth=60)], [("in", "d"), ("d", "l")])
        x = np.random.default_rng(0).integers(0, 2, size=(6, 2, 4))
        got = lava.run(g, x).spikes["l"]
        assert np.array_equal(got, torch_int.run(g, x).spikes["l"]) and got.sum() > 0
        print("METHOD", mp.get_start_method(allow_none=True))
        """
    )
    root = Path(__file__).resolve().parents[2]
    for method, want in (("spawn", "spawn"), ("none", "None")):
        out = subprocess.run([sys.executable, "-c", code, method], capture_output=True,
                             text=True, timeout=180, cwd=root)
        assert out.returncode == 0, out.stderr[-2000:]
        assert f"METHOD {want}" in out.stdout, out.stdout
