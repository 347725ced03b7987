"""NIRNet: the float path over NIR graphs (timing, neuron update, paths, gradients)."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snn2hw.common.errors import GraphError
from snn2hw.nir import NIRNet, discretize_neuron, get_convention

SNN2HW = get_convention("snn2hw")
DT = 1e-3


def _lif(n, tau=5e-3, vth=1.0, v_reset=0.0, v_leak=0.0, r=None):
    tau = np.broadcast_to(np.asarray(tau, np.float64), (n,)).copy()
    return nir.LIF(tau=tau, r=tau / DT if r is None else np.full(n, r),
                   v_leak=np.full(n, v_leak), v_threshold=np.full(n, vth),
                   v_reset=np.full(n, v_reset))


def _chain(*layers, n_in=5) -> nir.NIRGraph:
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    names = ["input"]
    for i, node in enumerate(layers):
        nodes[f"n{i}"] = node
        names.append(f"n{i}")
    out_shape = np.array(list(nodes[names[-1]].output_type["output"]))
    nodes["output"] = nir.Output(output_type={"output": out_shape})
    names.append("output")
    edges = [(a, b) for a, b in zip(names[:-1], names[1:], strict=True)]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _affine(n_out, n_in, seed=0, scale=1.0, bias=True):
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(n_out, n_in)) * scale).astype(np.float32)
    if not bias:
        return nir.Linear(weight=w)
    return nir.Affine(weight=w, bias=(rng.normal(size=n_out) * 0.1).astype(np.float32))


def _reference(dn, currents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-step equations of snn2hw.nir.discretize, written out in numpy float64."""
    u = np.zeros(currents.shape[1:])
    v = np.zeros(currents.shape[1:])
    spikes, volts = [], []
    for x in currents:
        u = dn.alpha * u + dn.in_gain * x
        v = dn.beta * v + u + dn.v_bias
        s = (v > dn.vth) if dn.threshold_op == ">" else (v >= dn.vth)
        if dn.reset == "hard":
            v = np.where(s, dn.v_reset, v)
        else:
            v = v - dn.vth * s
        spikes.append(s.astype(float))
        volts.append(v)
    return np.array(spikes), np.array(volts)


def test_no_hop_delay_on_forward_edges():
    g = _chain(nir.Linear(weight=np.eye(3) * 2.0), _lif(3, tau=1e-3),
               nir.Linear(weight=np.eye(3) * 2.0), _lif(3, tau=1e-3), n_in=3)
    net = NIRNet(g, DT, SNN2HW)
    x = torch.zeros(5, 1, 3)
    x[0, 0, 1] = 1.0
    y, rec = net(x, record=True)
    assert rec["n1"][:, 0, 1].tolist() == [1, 0, 0, 0, 0]
    assert y[:, 0, 1].tolist() == [1, 0, 0, 0, 0]  # same step, two layers down


def test_fused_and_step_loop_paths_agree_bit_for_bit():
    g = _chain(_affine(16, 5, scale=1.5), _lif(16), _affine(4, 16, seed=1), _lif(4, vth=0.5))
    net = NIRNet(g, DT, SNN2HW)
    x = torch.rand(50, 3, 5)
    with torch.no_grad():
        y_fused, rec_fused = net(x, record=True)
        for name in net.discrete_neurons():
            assert net.module(name).fused_ok
            net.module(name).fused_ok = False
        y_loop, rec_loop = net(x, record=True)
    assert rec_fused["n1"].sum() > 20 and y_fused.sum() > 5
    for k in rec_fused:
        assert torch.equal(rec_fused[k], rec_loop[k]), k


def test_per_neuron_parameters_reset_value_and_leak_follow_the_equations():
    n = 6
    lif = _lif(n, tau=np.linspace(2e-3, 9e-3, n), vth=0.8, v_reset=-0.2, v_leak=0.1, r=3.0)
    g = _chain(_affine(n, 5, scale=1.0), lif)
    net = NIRNet(g, DT, SNN2HW, dtype=torch.float64)
    assert not net.module("n1").fused_ok  # per-neuron tau and v_reset != 0: step loop
    x = torch.rand(80, 2, 5, dtype=torch.float64)
    with torch.no_grad():
        y, rec = net(x, record=True)
    dn = net.discrete_neurons()["n1"]
    s_ref, _ = _reference(dn, rec["n0"].numpy())
    assert s_ref.sum() > 10
    np.testing.assert_array_equal(y.numpy(), s_ref)


def test_recurrent_edge_delivers_previous_step_and_bias_from_step_zero():
    n = 4
    rng = np.random.default_rng(3)
    w_in = rng.normal(size=(n, 3)).astype(np.float32)
    w_rec = (rng.normal(size=(n, n)) * 0.5).astype(np.float32)
    b_rec = np.full(n, 0.3, np.float32)
    cuba = nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 4e-3), r=np.full(n, 4.0),
                       v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n),
                       w_in=np.full(n, 2.0))
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Linear(weight=w_in),
            "lif": cuba,
            "rec": nir.Affine(weight=w_rec, bias=b_rec),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
    )
    net = NIRNet(g, DT, SNN2HW, dtype=torch.float64)
    assert net.back_edges == [("rec", "lif")] and net.recurrent
    assert net.order == ["input", "fc", "lif", "rec", "output"]
    x = (torch.rand(60, 2, 3) < 0.4).double()
    with torch.no_grad():
        y = net(x).numpy()
    dn = discretize_neuron("lif", cuba, DT, SNN2HW)
    u = np.zeros((2, n))
    v = np.zeros((2, n))
    s = np.zeros((2, n))
    ref = []
    for t in range(60):
        cur = x[t].numpy() @ w_in.T.astype(np.float64) + s @ w_rec.T.astype(np.float64) + b_rec
        u = dn.alpha * u + dn.in_gain * cur
        v = dn.beta * v + u
        s = (v > dn.vth).astype(float)
        v = np.where(s > 0, 0.0, v)
        ref.append(s)
    ref = np.array(ref)
    assert ref.sum() > 10
    np.testing.assert_array_equal(y, ref)


def test_gradients_reach_the_weights_feed_forward_and_recurrent(external):
    g = _chain(_affine(16, 5, scale=1.5), _lif(16), _affine(4, 16, seed=1), _lif(4, vth=0.5))
    net = NIRNet(g, DT, SNN2HW)
    net(torch.rand(20, 3, 5)).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert len(grads) == 4 and all(gr is not None and gr.abs().sum() > 0 for gr in grads)
    from snn2hw.nir import read_nir

    braille = read_nir(external / "nir-paper" / "03_rnn" / "braille_noDelay_bias_zero.nir")
    rnet = NIRNet(braille, 1e-4, get_convention("snntorch"))
    x = torch.tensor(np.load(external / "nir-paper" / "03_rnn" / "braille_test0_input_T256x12.npy"))
    rnet(x[:64, None]).sum().backward()
    w_rec = rnet.module("lif1.w_rec").weight
    assert w_rec.grad is not None and w_rec.grad.abs().sum() > 0


def test_double_uses_the_exact_float64_discretization():
    g = _chain(_affine(3, 5), _lif(3, tau=3e-3))
    net = NIRNet(g, DT, SNN2HW)
    assert net.module("n1").beta.dtype == torch.float32
    net = net.double()
    dn = discretize_neuron("n1", g.nodes["n1"], DT, SNN2HW)
    beta = net.module("n1").beta
    assert beta.dtype == torch.float64 and np.array_equal(beta.numpy(), dn.beta)
    assert net.module("n0").weight.dtype == torch.float64
    assert net(torch.rand(4, 2, 5)).dtype == torch.float64


def test_leaky_integrator_outputs_its_membrane():
    li = nir.LI(tau=np.full(2, 2e-3), r=np.ones(2), v_leak=np.zeros(2))
    g = _chain(nir.Linear(weight=np.eye(2)), li, n_in=2)
    net = NIRNet(g, DT, SNN2HW, dtype=torch.float64)
    x = torch.zeros(4, 1, 2, dtype=torch.float64)
    x[0, 0, 0] = 1.0
    y = net(x)[:, 0, 0].detach().numpy()
    np.testing.assert_allclose(y, [0.5, 0.25, 0.125, 0.0625])


def test_threshold_operator_and_reset_override():
    ifn = nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1))
    g = _chain(nir.Linear(weight=np.eye(1)), ifn, n_in=1)
    x = torch.tensor([1.0, 0.0, 1.5, 0.0, 0.0]).reshape(5, 1, 1)
    strict = NIRNet(g, DT, SNN2HW)(x)[:, 0, 0].tolist()
    g_sj = _chain(nir.Linear(weight=np.eye(1)),  # SpikingJelly writes IF r = 1/dt
                  nir.IF(r=np.full(1, 1 / DT), v_threshold=np.ones(1), v_reset=np.zeros(1)),
                  n_in=1)
    ge = NIRNet(g_sj, DT, get_convention("spikingjelly"))(x)[:, 0, 0].tolist()
    assert strict == [0, 0, 1, 0, 0]  # 1.0 is not > 1.0; 2.5 is, reset to 0
    assert ge == [1, 0, 1, 0, 0]  # 1.0 >= 1.0; then 1.5 >= 1.0
    sub = NIRNet(g, DT, SNN2HW, reset="subtract")
    assert sub.discrete_neurons()["n1"].reset == "subtract"
    # 1.0 -> 1.0, +1.5 -> 2.5 > 1 spikes, 2.5 - 1 = 1.5 > 1 spikes again, 0.5
    assert sub(x)[:, 0, 0].tolist() == [0, 0, 1, 1, 0]
    with pytest.raises(GraphError, match="reset 'zero' unknown"):
        NIRNet(g, DT, SNN2HW, reset="zero")


def test_input_shape_is_checked():
    net = NIRNet(_chain(_affine(3, 5), _lif(3)), DT, SNN2HW)
    with pytest.raises(GraphError, match=r"input has shape \[4, 2, 6\]; expected \[T, B, 5\]"):
        net(torch.rand(4, 2, 6))


def test_topology_helpers_and_discrete_neurons():
    g = _chain(_affine(3, 5), _lif(3, tau=4e-3))
    net = NIRNet(g, DT, SNN2HW)
    assert net.order == ["input", "n0", "n1", "output"] and net.back_edges == []
    assert net.graph is g and net.dt == DT and net.convention.name == "snn2hw"
    dns = net.discrete_neurons()
    assert list(dns) == ["n1"]
    np.testing.assert_allclose(dns["n1"].beta, 0.75)
    np.testing.assert_allclose(dns["n1"].in_gain, 1.0)
    assert net.input_shape == (5,) and net.output_shape == (3,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(external):
    from snn2hw.nir import load_nir

    d = external / "nir-paper" / "03_rnn"
    net = load_nir(d / "braille_noDelay_bias_zero.nir", convention="snntorch")
    x = torch.tensor(np.load(d / "braille_test0_input_T256x12.npy"))[:, None]
    g = _chain(_affine(16, 5, scale=1.5), _lif(16), _affine(4, 16, seed=1), _lif(4, vth=0.5))
    ff = NIRNet(g, DT, SNN2HW)
    xf = torch.rand(50, 3, 5)
    with torch.no_grad():
        for model, inp in ((net, x), (ff, xf)):
            cpu = model(inp)
            gpu = model.to("cuda")(inp.cuda()).cpu()
            # GPU reductions may round differently: allow rare threshold flips only
            assert cpu.sum() > 0 and float((cpu != gpu).float().mean()) < 0.01


# ----- the export hook: forward(traceable=True) and traceable() ------------------------------
def _conv_pool_graph(recurrent: bool) -> nir.NIRGraph:
    """conv -> LIF -> SumPool2d -> flatten -> affine -> LIF (fused-eligible neurons), with
    an optional recurrent affine on the last LIF."""
    from snn2hw.nir import to_nir
    from snn2hw.nn.model import SpikingNet

    torch.manual_seed(4)
    g = to_nir(SpikingNet({
        "input_shape": [1, 8, 8],
        "layers": [{"type": "conv", "out": 4, "kernel": 3, "padding": 1}, {"type": "neuron"},
                   {"type": "sumpool", "kernel": 2, "padding": 1}, {"type": "flatten"},
                   {"type": "linear", "out": 6}, {"type": "neuron", "threshold": 0.5}],
    }).eval(), DT)
    if not recurrent:
        return g
    last = next(src for src, dst in g.edges if dst == "output")
    rng = np.random.default_rng(5)
    nodes = dict(g.nodes)
    nodes["rec"] = nir.Affine(weight=(rng.normal(size=(6, 6)) * 0.4).astype(np.float32),
                              bias=np.full(6, 0.05, np.float32))
    return nir.NIRGraph(nodes=nodes, edges=[*g.edges, (last, "rec"), ("rec", last)],
                        metadata=dict(g.metadata))


@pytest.mark.parametrize("recurrent", [False, True], ids=["feed_forward", "recurrent"])
def test_traceable_forward_equals_the_default_path_node_for_node(recurrent, monkeypatch):
    net = NIRNet(_conv_pool_graph(recurrent), DT, SNN2HW)
    assert net.recurrent == recurrent
    assert all(net.module(n).fused_ok for n in net.discrete_neurons())
    x = torch.rand(15, 3, 1, 8, 8) * 2
    with torch.no_grad():
        y, rec = net(x, record=True)
        import snn2hw.nir.executor as executor

        def no_fused(*args, **kwargs):
            raise AssertionError("traceable=True must not call the fused numba kernel")

        def no_avg_pool(*args, **kwargs):
            raise AssertionError("traceable=True must not sum pools with avg_pool2d")

        monkeypatch.setattr(executor, "lif_multistep", no_fused)
        monkeypatch.setattr(executor.F, "avg_pool2d", no_avg_pool)
        y_t, rec_t = net(x, record=True, traceable=True)
    assert y.sum() > 0 and all(rec[n].sum() > 0 for n in net.discrete_neurons())
    assert rec.keys() == rec_t.keys()
    for k in rec:
        assert torch.equal(rec[k], rec_t[k]), k
    assert torch.equal(y, y_t)


def test_traceable_module_shares_the_net_and_leaves_it_unchanged():
    net = NIRNet(_conv_pool_graph(False), DT, SNN2HW).eval()
    x = torch.rand(10, 2, 1, 8, 8) * 2
    state = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [(m.training, sorted(vars(m))) for m in net.modules()]
    with torch.no_grad():
        y = net(x)
        t = net.traceable()
        assert isinstance(t, torch.nn.Module) and not t.training  # the net's mode
        assert [id(p) for p in t.parameters()] == [id(p) for p in net.parameters()]
        assert torch.equal(t(x), y)
        traced = torch.jit.trace(t, (x,), check_trace=False)
        ops = {n.kind() for n in traced.inlined_graph.nodes()}
        assert "aten::avg_pool2d" not in ops and {"aten::conv2d", "aten::_convolution"} & ops
        assert torch.equal(traced(x), y)
        x2 = torch.rand(10, 5, 1, 8, 8) * 2
        assert torch.equal(traced(x2), net(x2))  # another batch size
    assert [(m.training, sorted(vars(m))) for m in net.modules()] == flags
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    with torch.no_grad():
        assert torch.equal(net(x), y)
    net.train()
    assert net.traceable().training
