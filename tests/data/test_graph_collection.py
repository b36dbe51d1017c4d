"""Collections of graphs: batches are disjoint unions, seeded; the graph-collection format reads
what `write_graph_collection` writes and refuses bad tables in one line; the generated families
share their degree sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import archlab
from archlab.data import load_data
from archlab.data.graph_collection import FAMILIES, family_graph, from_graphs, write_graph_collection
from archlab.data.sources import detect_format
from archlab.errors import DataError


def small_collection(seed: int = 0, count: int = 7):
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(count):
        n = 3 + i % 4
        pairs = torch.stack([torch.arange(n - 1), torch.arange(1, n)])  # a path
        graphs.append((torch.randn(n, 2, generator=g), torch.cat([pairs, pairs.flip(0)], 1)))
    return from_graphs(graphs, torch.arange(count) % 2), graphs


def test_a_batch_is_the_disjoint_union_of_its_graphs():
    collection, graphs = small_collection()
    index = torch.tensor([5, 0, 3])
    batch = collection.collate(index)
    offset = 0
    for k, i in enumerate(index.tolist()):
        x, edges = graphs[i]
        rows = torch.nonzero(batch["batch"] == k).flatten()
        assert torch.equal(rows, torch.arange(offset, offset + len(x)))
        torch.testing.assert_close(batch["x"][rows], x)
        mine = batch["edge_index"][:, (batch["edge_index"][1] >= offset) & (batch["edge_index"][1] < offset + len(x))]
        assert torch.equal(mine - offset, edges)
        offset += len(x)
    assert torch.equal(batch["y"], collection.y[index])


def test_batches_are_seeded_and_resumable():
    collection, _ = small_collection()
    first = list(collection.batches(2, shuffle=True, seed=3))
    resumed = list(collection.batches(2, shuffle=True, seed=3, start=2))
    assert len(first) == collection.num_batches(2) == 4
    for a, b in zip(first[2:], resumed):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_format_reads_what_is_written(tmp_path):
    data = archlab.load_dataset("graph-families", num_graphs=30)
    folder = write_graph_collection(data, tmp_path / "families")
    assert detect_format(folder) == "graph-collection"
    again = load_data(folder, split_column="split")
    assert again.spec.kind == "graphs" and again.spec.class_names == sorted(FAMILIES)
    rename = [sorted(FAMILIES).index(name) for name in data.spec.class_names]  # classes are read in sorted order
    for split in ("train", "val", "test"):
        a, b = data[split], again[split]
        assert len(a) == len(b)
        assert torch.equal(torch.tensor(rename)[a.y], b.y)
        for g in range(len(a)):
            (xa, ea), (xb, eb) = a.graph(g), b.graph(g)
            torch.testing.assert_close(xa, xb)
            assert torch.equal(ea, eb)


def write(folder, graphs, edges, nodes=None):
    folder.mkdir(exist_ok=True)
    (folder / "graphs.csv").write_text(graphs)
    (folder / "edges.csv").write_text(edges)
    if nodes is not None:
        (folder / "nodes.csv").write_text(nodes)
    return folder


GRAPHS = "graph_id,label\n" + "".join(f"g{i},{'ab'[i % 2]}\n" for i in range(20))
EDGES = "graph_id,source,target\n" + "".join(f"g{i},a,b\ng{i},b,c\n" + ("g%d,c,a\n" % i if i % 2 else "")
                                              for i in range(20))


def test_without_a_nodes_table_nodes_come_from_the_edges(tmp_path):
    data = load_data(write(tmp_path / "c", GRAPHS, EDGES), features="degree")
    every = [data[s].graph(g) for s in ("train", "val", "test") for g in range(len(data[s]))]
    assert len(every) == 20 and all(len(x) == 3 for x, _ in every)
    triangles = [x for x, e in every if e.size(1) == 6]
    assert len(triangles) == 10 and all(torch.equal(x, torch.full((3, 1), 2.0)) for x in triangles)
    assert data.spec.model_kwargs() == {"in_features": 1, "num_classes": 2}


@pytest.mark.parametrize("graphs, edges, nodes, message", [
    (GRAPHS, EDGES.replace("g3,a,b", "g99,a,b"), None, r"edges.csv, line \d+: graph 'g99' is not in"),
    (GRAPHS.replace("label", "class"), EDGES, None, "no label column 'label'"),
    (GRAPHS.replace("g1,b", "g0,b"), EDGES, None, "line 3: duplicate graph id 'g0'"),
    (GRAPHS, EDGES, "graph_id,id,f\ng0,a,1\n", r"line 3: the edge's source \('source'\) 'b' is no node of graph 'g0'"),
    (GRAPHS, EDGES, "graph_id,id,f\n" + "".join(f"g{i},{n},x\n" for i in range(20) for n in "abc"),
     "feature column 'f' must hold numbers"),
])
def test_bad_tables_are_refused_in_one_line(tmp_path, graphs, edges, nodes, message):
    with pytest.raises(DataError, match=message) as err:
        load_data(write(tmp_path / "bad", graphs, edges, nodes))
    assert "\n" not in str(err.value)


def test_a_graph_folder_without_a_graphs_table_is_still_one_graph(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "nodes.csv").write_text("id,label\na,0\nb,1\n")
    (folder / "edges.csv").write_text("source,target\na,b\n")
    assert detect_format(folder) == "graph-tables"


def test_families_share_one_degree_sequence_and_differ_in_structure():
    degrees, edge_sets = [], []
    for family in FAMILIES:
        edges = family_graph(family, 30, np.random.default_rng(4))
        assert len({frozenset(e) for e in edges}) == len(edges) and all(u != v for u, v in edges)  # simple
        degrees.append(sorted(np.bincount(np.array(edges).ravel(), minlength=30).tolist()))
        edge_sets.append({frozenset(e) for e in edges})
    assert degrees[0] == degrees[1] == degrees[2]
    assert edge_sets[0] != edge_sets[1] != edge_sets[2] != edge_sets[0]
