"""One epoch of sampled-neighbourhood training on a generated graph: archlab vs a reference.

The graph is a stochastic block model: `--nodes` nodes in `--blocks` equal blocks, `--edges`
directed edges (`edge_index` columns: half as many undirected pairs, each listed both ways), a
pair inside one block with probability `--p-in`, else between two uniform nodes; each node's
features are its block's mean plus unit noise, its label its block. Both sides train a 2-layer
GraphSAGE (mean aggregator, `--hidden` features, dropout 0.5, Adam) for one epoch over the
`--train-fraction` of nodes, `--batch-size` seeds a batch, fan-outs `--fanouts`, the batches
drawn by `--workers` DataLoader workers:

- archlab: `archlab.engine.fit` with node classification's ``num_neighbors`` (its
  `NeighborSplit`) and the ``sage`` model, which computes each layer only for the nodes the next
  one reads;
- the reference: PyG's `NeighborLoader` + `torch_geometric.nn.SAGEConv` when PyG's sampler runs
  here (it needs pyg-lib or torch-sparse), else a plain-PyTorch sampler written below, the same
  draws (without replacement) in PyG's batch layout, feeding the same PyG `SAGEConv` model.

Each side runs in a fresh process; its time is the epoch's wall clock (and, steadier on a shared
machine, the CPU seconds of the process and its workers after the graph was built); its peak
memory is the largest sum, sampled every 20 ms, of
the main process's resident set and its workers' unique memory (pages only they hold); every
side has imported PyG and built the graph before its clock starts. Last, a
full-batch GCN (archlab's ``gcn``, `--hidden` features, cached normalized adjacency) takes one
training step on the whole graph, to show the memory sampling saves.

    python benchmarks/sampling.py [--nodes 1000000] [--edges 10000000] [--workers 1] [--threads 1]

Targets: archlab's time <= 0.7x and peak memory <= 1.0x the reference's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def block_graph(nodes: int, edges: int, blocks: int, features: int, p_in: float, seed: int):
    """The SBM graph of the module docstring: (x, edge_index, y)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, blocks, (nodes,), generator=g)
    members = torch.argsort(y, stable=True)  # node ids sorted by block
    sizes = torch.bincount(y, minlength=blocks)
    starts = torch.cumsum(sizes, 0) - sizes
    pairs = edges // 2
    source = torch.randint(0, nodes, (pairs,), generator=g)
    inside = torch.rand(pairs, generator=g) < p_in
    block = y[source]
    offset = (torch.rand(pairs, generator=g) * sizes[block]).long()
    target = torch.where(inside, members[starts[block] + offset], torch.randint(0, nodes, (pairs,), generator=g))
    edge_index = torch.cat([torch.stack([source, target]), torch.stack([target, source])], 1)
    means = torch.randn(blocks, features, generator=g)
    x = means[y] + torch.randn(nodes, features, generator=g)
    return x, edge_index, y


def train_mask(nodes: int, fraction: float, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed + 1)
    return torch.rand(nodes, generator=g) < fraction


# -- the reference sampler: plain PyTorch, PyG's NeighborLoader layout ------------------------------------


class ReferenceSampler:
    """Seeds -> PyG-style subgraph: at most k in-neighbours per node of the previous hop, without
    replacement, relabelled with `torch.unique`; a collate function for a DataLoader over seeds."""

    def __init__(self, x, edge_index, y, num_nodes: int, fanouts: list[int], seed: int):
        import torch

        order = torch.argsort(edge_index[1], stable=True)
        self.col = edge_index[0][order]
        self.rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        self.rowptr[1:] = torch.cumsum(torch.bincount(edge_index[1], minlength=num_nodes), 0)
        self.x, self.y, self.fanouts, self.seed = x, y, fanouts, seed
        self.calls = 0

    def __call__(self, seeds: list[int]):
        import torch

        self.calls += 1
        g = torch.Generator().manual_seed(self.seed * 7919 + self.calls)
        seeds = torch.as_tensor(seeds, dtype=torch.long)
        nodes, frontier, rows, cols = seeds, seeds, [], []
        for k in self.fanouts:
            start, degree = self.rowptr[frontier], self.rowptr[frontier + 1] - self.rowptr[frontier]
            owner = torch.repeat_interleave(frontier, degree)
            segment = torch.repeat_interleave(torch.arange(len(frontier)), degree)
            first = torch.repeat_interleave(torch.cumsum(degree, 0) - degree, degree)
            position = torch.repeat_interleave(start, degree) + torch.arange(len(owner)) - first
            key = torch.rand(len(owner), generator=g)
            by_key = torch.argsort(key)
            by_owner = by_key[torch.argsort(segment[by_key], stable=True)]  # grouped by node, shuffled inside
            rank = torch.arange(len(owner)) - first  # rank inside each node's group after the sort
            chosen = by_owner[rank < k]
            source = self.col[position[chosen]]
            rows.append(owner[chosen])
            cols.append(source)
            seen = torch.isin(source, nodes)
            new = torch.unique(source[~seen])
            nodes = torch.cat([nodes, new])
            frontier = new
        # relabel: position of each global id in `nodes`
        sorted_nodes, where = torch.sort(nodes)
        target_global, source_global = torch.cat(rows), torch.cat(cols)
        local_target = where[torch.searchsorted(sorted_nodes, target_global)]
        local_source = where[torch.searchsorted(sorted_nodes, source_global)]
        return {"x": self.x[nodes], "y": self.y[nodes], "edge_index": torch.stack([local_source, local_target]),
                "batch_size": len(seeds)}


def pyg_sage(in_features: int, hidden: int, classes: int):
    import torch.nn.functional as F
    from torch import nn
    from torch_geometric.nn import SAGEConv

    class SAGE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = SAGEConv(in_features, hidden)
            self.conv2 = SAGEConv(hidden, classes)

        def forward(self, x, edge_index):
            x = F.dropout(x, 0.5, self.training)
            x = F.relu(self.conv1(x, edge_index))
            x = F.dropout(x, 0.5, self.training)
            return self.conv2(x, edge_index)

    return SAGE()


def pyg_sampler_runs() -> bool:
    """Whether PyG's NeighborLoader can sample here (it needs pyg-lib or torch-sparse)."""
    import warnings

    import torch
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader

    data = Data(x=torch.zeros(4, 1), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), y=torch.zeros(4))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            next(iter(NeighborLoader(data, num_neighbors=[1], batch_size=2)))
        return True
    except ImportError:
        return False


# -- the contenders, each in its own process ----------------------------------------------------------------


def run_side(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    x, edge_index, y = block_graph(args.nodes, args.edges, args.blocks, args.features, args.p_in, args.seed)
    mask = train_mask(args.nodes, args.train_fraction, args.seed)
    import torch.nn.functional as F
    import archlab
    from archlab.data.graph import Graph, GraphSplit
    from archlab.engine import TrainConfig, fit
    from archlab.models.graph_tasks import NodeClassificationTask

    import torch_geometric.nn  # noqa: F401  (every side imports PyG, so the peaks compare training, not imports)

    pyg = args.side == "reference" and pyg_sampler_runs()
    baseline = psutil.Process().memory_info().rss
    setup = psutil.Process().cpu_times()
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    if args.side == "archlab":
        split = GraphSplit(Graph(x=x, edge_index=edge_index, y=y), mask)
        model = archlab.create_model("sage", in_features=args.features, num_classes=args.blocks,
                                     hidden_dim=args.hidden, num_layers=len(args.fanouts))
        task = NodeClassificationTask(args.blocks, args.fanouts, args.workers)
        steps = -(-int(mask.sum()) // args.batch_size)
        result = fit(model, task, {"train": split}, TrainConfig(steps=steps, batch_size=args.batch_size,
                                                                 optimizer="adam", lr=0.01, quiet=True,
                                                                 seed=args.seed))
        loss, name = result.history[-1]["train_loss"], "archlab NeighborSplit + sage"
    elif args.side == "reference":
        model = pyg_sage(args.features, args.hidden, args.blocks)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        if pyg:
            from torch_geometric.data import Data
            from torch_geometric.loader import NeighborLoader

            loader = NeighborLoader(Data(x=x, edge_index=edge_index, y=y), num_neighbors=args.fanouts,
                                    batch_size=args.batch_size, input_nodes=mask, shuffle=True,
                                    num_workers=args.workers, persistent_workers=args.workers > 0)
            name = "PyG NeighborLoader + SAGEConv"
        else:
            sampler = ReferenceSampler(x, edge_index, y, args.nodes, args.fanouts, args.seed)
            seeds = torch.nonzero(mask).flatten().tolist()
            loader = torch.utils.data.DataLoader(seeds, batch_size=args.batch_size, shuffle=True, collate_fn=sampler,
                                                 num_workers=args.workers, persistent_workers=args.workers > 0)
            name = "plain-PyTorch sampler + PyG SAGEConv"
        total, count = 0.0, 0
        model.train()
        for batch in loader:
            b = batch["batch_size"] if isinstance(batch, dict) else batch.batch_size
            out = model(batch["x"], batch["edge_index"])[:b]
            loss = F.cross_entropy(out, batch["y"][:b])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item(), count + 1
        loss = total / count
    else:  # full-batch GCN, one step
        model = archlab.create_model("gcn", in_features=args.features, num_classes=args.blocks,
                                     hidden_dim=args.hidden)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        out = model(x, edge_index)
        loss = F.cross_entropy(out[mask], y[mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss, name = loss.item(), "archlab gcn, full batch, one step"
    return {"name": name, "seconds": time.perf_counter() - started, "loss": float(loss),
            "baseline_bytes": baseline, "setup_cpu_seconds": setup.user + setup.system}


def measure(argv: list[str]) -> dict:
    """Run one side in a fresh process, sampling its memory (and its workers') every 20 ms."""
    child = subprocess.Popen([sys.executable, __file__, *argv, "--child"], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT)
    proc = psutil.Process(child.pid)
    peak = 0
    cpu: dict[int, float] = {}  # pid -> latest user + system seconds (a worker's last reading outlives it)
    done = threading.Event()

    def seconds(p: psutil.Process) -> float:
        times = p.cpu_times()
        return times.user + times.system

    def poll():
        nonlocal peak
        while not done.is_set():
            try:
                total = proc.memory_info().rss
                cpu[proc.pid] = seconds(proc)
                for worker in proc.children(recursive=True):
                    try:
                        total += worker.memory_full_info().uss
                        cpu[worker.pid] = seconds(worker)
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            time.sleep(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, _ = child.communicate()
    done.set()
    thread.join()
    if child.returncode != 0:
        raise SystemExit(f"the {argv} run failed (exit {child.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_bytes"] = peak
    result["cpu_seconds"] = sum(cpu.values()) - result["setup_cpu_seconds"]
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--edges", type=int, default=10_000_000, help="edge_index columns (both directions)")
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--p-in", type=float, default=0.8)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--fanouts", type=int, nargs="+", default=[25, 10])
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--train-fraction", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-full-batch", action="store_true")
    p.add_argument("--side", choices=["archlab", "reference", "full-batch"], default=None)
    p.add_argument("--child", action="store_true")
    args = p.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT / "src"))
        print(json.dumps(run_side(args)))
        return
    common = [a for a in sys.argv[1:] if a != "--skip-full-batch"]
    print(f"SBM graph: {args.nodes:,} nodes, {args.edges:,} edges, {args.blocks} blocks, {args.features} features; "
          f"{args.train_fraction:.0%} train nodes, batch {args.batch_size}, fan-outs {args.fanouts}, "
          f"{args.workers} worker(s), {args.threads} thread(s)")
    rows = {side: measure([*common, "--side", side]) for side in ("archlab", "reference")}
    if not args.skip_full_batch:
        rows["full-batch"] = measure([*common, "--side", "full-batch"])
    print(f"{'':40s} {'seconds':>9s} {'cpu s':>8s} {'peak MB':>9s} {'above graph MB':>15s} {'loss':>7s}")
    for row in rows.values():
        print(f"{row['name']:40s} {row['seconds']:9.2f} {row['cpu_seconds']:8.2f} {row['peak_bytes'] / 2**20:9.0f} "
              f"{(row['peak_bytes'] - row['baseline_bytes']) / 2**20:15.0f} {row['loss']:7.3f}")
    a, r = rows["archlab"], rows["reference"]
    print(f"archlab / reference: time {a['seconds'] / r['seconds']:.2f}x (target <= 0.7; CPU time "
          f"{a['cpu_seconds'] / r['cpu_seconds']:.2f}x), peak memory {a['peak_bytes'] / r['peak_bytes']:.2f}x "
          f"(target <= 1.0)")


if __name__ == "__main__":
    main()
