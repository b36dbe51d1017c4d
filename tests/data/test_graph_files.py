"""Graphs from files: node and edge tables, an edges table alone, edge lists, GraphML and GML;
Cora written as tables gives the built-in loader's graph and GCN accuracy; every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

import archlab
from archlab.data import from_graph, load_data, load_dataset
from archlab.data.sources import source_options
from archlab.errors import ConfigError, DataError

from ..conftest import SHARED_DATA

SPLITS = ("train", "val", "test")


def karate_tables(folder: Path, *, split: bool = False) -> Path:
    """Zachary's karate club as nodes.csv (id, two features, the faction) and edges.csv."""
    g = nx.karate_club_graph()
    rng = np.random.default_rng(0)
    nodes = pd.DataFrame({"id": [f"m{i}" for i in g.nodes], "f0": rng.normal(size=34), "f1": rng.normal(size=34),
                          "label": [g.nodes[i]["club"] for i in g.nodes]})
    if split:
        nodes["split"] = (["train"] * 20 + ["val"] * 7 + ["test"] * 6 + [""])
    edges = pd.DataFrame([(f"m{s}", f"m{t}", w) for s, t, w in g.edges(data="weight")],
                         columns=["source", "target", "weight"])
    folder.mkdir(parents=True, exist_ok=True)
    nodes.to_csv(folder / "nodes.csv", index=False)
    edges.to_csv(folder / "edges.csv", index=False)
    return folder


def undirected(graph) -> set[tuple[int, int]]:
    s, t = graph.edge_index.tolist()
    return {(min(a, b), max(a, b)) for a, b in zip(s, t)}


def test_a_folder_of_node_and_edge_tables_trains_gcn_and_gae(tmp_path):
    folder = karate_tables(tmp_path / "karate")
    data = load_data(folder)
    assert data.spec.kind == "graph" and data.spec.options["format"] == "graph-tables"
    graph = data.train.graph
    assert graph.num_nodes == 34 and graph.num_edges == 2 * 78 and graph.x.shape == (34, 2)
    assert data.spec.class_names == ["Mr. Hi", "Officer"] and data.spec.num_classes == 2
    assert undirected(graph) == {tuple(sorted(e)) for e in nx.karate_club_graph().edges}
    # sorted by target, then source, as PyG and the Planetoid loader order edges
    key = graph.edge_index[1] * 34 + graph.edge_index[0]
    assert torch.equal(key, key.sort().values)
    masks = torch.stack([data[s].mask for s in SPLITS])
    assert masks.sum(0).tolist() == [1] * 34 and [len(data[s]) for s in SPLITS] == [23, 5, 6]
    assert {"pos_edge_index", "neg_edge_index", "link_edge_index"} <= set(next(data.val.batches(1)))
    assert archlab.train("gcn", data, epochs=2, quiet=True).metrics["test_accuracy"] >= 0.0
    assert archlab.train("gae", data, epochs=2, quiet=True).metrics["test_auroc"] >= 0.0


def test_a_nodes_file_with_the_edges_option_is_the_same_graph_and_rebuilds_from_its_spec(tmp_path):
    folder = karate_tables(tmp_path / "karate")
    by_folder = load_data(folder, seed=3)
    by_file = load_data(folder / "nodes.csv", format="graph-tables", edges=str(folder / "edges.csv"), seed=3,
                        weight="weight")
    assert torch.equal(by_file.train.graph.edge_index, by_folder.train.graph.edge_index)
    assert torch.equal(by_file.train.graph.x, by_folder.train.graph.x)
    assert by_file.train.graph.edge_weight.shape == (156,) and by_folder.train.graph.edge_weight is None
    for split in SPLITS:
        assert torch.equal(by_file[split].mask, by_folder[split].mask)
    again = source_options(by_file)
    rebuilt = load_data(again["source"], format=again["format"], seed=again["seed"], **again["options"])
    assert rebuilt.spec.to_dict() == by_file.spec.to_dict()
    for split in SPLITS:
        assert torch.equal(rebuilt[split].mask, by_file[split].mask)
        assert torch.equal(rebuilt[split].links["pos_edge_index"], by_file[split].links["pos_edge_index"])


def test_the_split_column_gives_the_masks_and_the_seed_fixes_the_stratified_split(tmp_path):
    data = load_data(karate_tables(tmp_path / "k", split=True), split_column="split")
    assert [len(data[s]) for s in SPLITS] == [20, 7, 6]
    assert data.train.mask[:20].all() and not data.train.mask[20:].any() and not data.test.mask[33]
    folder = karate_tables(tmp_path / "s")
    a, b, c = load_data(folder, seed=1), load_data(folder, seed=1), load_data(folder, seed=2)
    assert torch.equal(a.test.mask, b.test.mask) and not torch.equal(a.test.mask, c.test.mask)
    y = a.train.graph.y
    for split in SPLITS:  # stratified: both factions in every split
        assert set(y[a[split].mask].tolist()) == {0, 1}


def test_unlabelled_nodes_are_in_no_split(tmp_path):
    folder = karate_tables(tmp_path / "k")
    nodes = pd.read_csv(folder / "nodes.csv")
    nodes.loc[[3, 7], "label"] = None
    nodes.to_csv(folder / "nodes.csv", index=False)
    data = load_data(folder)
    in_split = torch.stack([data[s].mask for s in SPLITS]).any(0)
    assert not in_split[3] and not in_split[7] and int(in_split.sum()) == 32


def test_numeric_labels_are_ordered_as_numbers_and_dense_features_stay_dense(tmp_path):
    nodes = pd.DataFrame({"id": range(30), "a": np.arange(30.0) + 1, "label": [2, 10, 1] * 10})
    edges = pd.DataFrame({"source": range(29), "target": range(1, 30)})
    data = from_graph(nodes, edges, split_column=None)
    assert data.spec.class_names == ["1", "2", "10"]
    assert data.train.graph.y[:3].tolist() == [1, 2, 0]
    assert data.train.graph.x.layout == torch.strided
    assert data.spec.preprocess["features"] == ["a"]
    assert "source" not in data.spec.options  # a DataFrame has no file to rebuild from


def test_an_edges_table_alone_gives_featureless_nodes_for_link_prediction(tmp_path):
    path = tmp_path / "edges.csv"
    pd.DataFrame({"source": ["b", "a", "c", "a", "d"], "target": ["a", "c", "d", "d", "e"]}).to_csv(path, index=False)
    data = load_data(path, format="graph-tables", link_prediction=True)
    graph = data.train.graph
    assert graph.y is None and data.spec.num_classes == 0 and len(data.train) == 0
    # nodes in the order they first appear; the one-hot identity, sparse
    assert graph.x.layout == torch.sparse_coo and torch.equal(graph.x.to_dense(), torch.eye(5))
    assert undirected(graph) == {(0, 1), (1, 2), (2, 3), (1, 3), (3, 4)}
    degree = from_graph(None, path, link_prediction=True, features="degree").train.graph
    assert degree.x.squeeze(1).tolist() == [1.0, 3.0, 2.0, 3.0, 1.0]
    with pytest.raises(DataError, match=r"edges.csv alone gives nodes without labels.*link_prediction=True"):
        load_data(path, format="graph-tables")


def test_link_prediction_needs_no_label_column_and_trains_gae(tmp_path):
    folder = karate_tables(tmp_path / "k")
    nodes = pd.read_csv(folder / "nodes.csv").drop(columns="label")
    nodes.to_csv(folder / "nodes.csv", index=False)
    data = load_data(folder, link_prediction=True)
    assert data.train.graph.y is None and data.train.graph.x.shape == (34, 2)
    result = archlab.train("vgae", data, epochs=2, quiet=True)
    assert 0.0 <= result.metrics["test_auroc"] <= 1.0


@pytest.mark.parametrize("fmt", ["edgelist", "graphml", "gml"])
def test_networkx_files_give_the_graph_with_its_attributes(tmp_path, fmt):
    g = nx.karate_club_graph()
    g = nx.relabel_nodes(g, {i: f"m{i}" for i in g.nodes})
    path = tmp_path / f"karate.{fmt}"
    {"edgelist": lambda: nx.write_edgelist(g, path, data=["weight"]), "graphml": lambda: nx.write_graphml(g, path),
     "gml": lambda: nx.write_gml(g, path)}[fmt]()
    if fmt == "edgelist":
        data = load_data(path, link_prediction=True, weight="weight")
        assert data.train.graph.y is None
    else:
        data = load_data(path, label="club", weight="weight")
        assert data.spec.class_names == ["Mr. Hi", "Officer"]
        assert data.train.graph.y.tolist() == [int(g.nodes[v]["club"] == "Officer") for v in g.nodes]
    graph = data.train.graph
    assert data.spec.options["format"] == fmt and graph.num_nodes == 34 and graph.num_edges == 156
    names = [f"m{i}" for i in range(34)] if fmt != "edgelist" else list(dict.fromkeys(
        v for e in g.edges for v in e))
    assert undirected(graph) == {tuple(sorted((names.index(s), names.index(t)))) for s, t in g.edges}
    assert graph.x.shape == (34, 34) and graph.edge_weight.min() >= 1.0
    if fmt == "graphml":
        assert archlab.train("gcn", data, epochs=2, quiet=True).metrics["test_accuracy"] >= 0.0


def test_a_networkx_file_refuses_table_options(tmp_path):
    path = tmp_path / "g.gml"
    nx.write_gml(nx.path_graph(4), path)
    with pytest.raises(ConfigError, match="node_id.*apply to tables only"):
        from_graph(path, node_id="name", link_prediction=True)
    assert from_graph(path, link_prediction=True).train.graph.num_nodes == 4


def test_self_loops_and_duplicate_edges_are_dropped_with_a_count(tmp_path):
    nodes = pd.DataFrame({"id": [1, 2, 3, 4], "label": ["a", "b", "a", "b"], "split": ["train", "train", "val", "test"]})
    edges = pd.DataFrame({"source": [1, 2, 2, 3, 2, 4], "target": [2, 2, 1, 4, 3, 4]})
    nodes.to_csv(tmp_path / "nodes.csv", index=False)
    edges.to_csv(tmp_path / "edges.csv", index=False)
    with pytest.warns(UserWarning, match=r"dropped 2 self-loop\(s\) \(the first at line 3\) and 1 duplicate "
                                         r"edge\(s\) \(the first at line 4\)"):
        data = load_data(tmp_path, split_column="split")
    assert data.spec.preprocess["dropped_edges"] == {"self_loops": 2, "duplicates": 1}
    assert undirected(data.train.graph) == {(0, 1), (2, 3), (1, 2)} and data.train.graph.num_edges == 6


def write(tmp_path, nodes: str | None, edges: str) -> Path:
    if nodes is not None:
        (tmp_path / "nodes.csv").write_text(nodes)
    (tmp_path / "edges.csv").write_text(edges)
    return tmp_path


GOOD_NODES = "id,f,label\na,1,x\nb,2,y\nc,3,x\nd,4,y\n"
GOOD_EDGES = "source,target\na,b\nb,c\nc,d\n"


@pytest.mark.parametrize("nodes, edges, options, message", [
    (GOOD_NODES, "source,target\na,b\nb,z\n", {},
     r"edges.csv, line 3: the edge's target 'z' names a node that does not exist \(no row of .*nodes.csv has id 'z'\)"),
    ("id,f,label\na,1,x\nb,2,y\na,3,x\n", GOOD_EDGES, {},
     r"nodes.csv, line 4: duplicate node id 'a' \(first at line 2\); node ids must be unique"),
    ("id,f,label\n", GOOD_EDGES, {}, r"nodes.csv has no nodes"),
    (GOOD_NODES, "source,target\n", {}, r"edges.csv has no edges"),
    (GOOD_NODES, "", {}, r"edges.csv is empty"),
    ("id,f,class\na,1,x\nb,2,y\n", GOOD_EDGES, {},
     r"nodes.csv has no label column 'label'; its columns are id, f, class\. Name it with the 'label' option"),
    (GOOD_NODES, "from,to\na,b\n", {}, r"edges.csv has no edge source column 'source'; its columns are from, to"),
    ("id,f,label\na,1,x\nb,oops,y\nc,3,x\nd,4,y\n", GOOD_EDGES, {},
     r"nodes.csv, line 3: feature column 'f' must hold numbers; got 'oops'"),
    ("id,f,label\na,1,x\nb,,y\nc,3,x\nd,4,y\n", GOOD_EDGES, {},
     r"nodes.csv, line 3: feature column 'f' must hold a finite number; got an empty cell"),
    ("id,f,label\na,1,x\nb,2,x\nc,3,x\nd,4,\n", GOOD_EDGES, {}, r"the label column 'label' has only the class 'x'"),
    ("id,f,label,s\na,1,x,train\nb,2,y,dev\nc,3,x,\nd,4,y,test\n", GOOD_EDGES, {"split_column": "s"},
     r"nodes.csv, line 3: the split column 's' must be train, val, test or empty; got 'dev'"),
    (GOOD_NODES, "source,target,w\na,b,1\nb,c,heavy\n", {"weight": "w"},
     r"edges.csv, line 3: the edge weight \('w'\) must be a finite number; got 'heavy'"),
    ("id,f,label\na,1,x\n,2,y\n", GOOD_EDGES, {}, r"nodes.csv, line 3: the node id \('id'\) is empty"),
    (GOOD_NODES, "source,target\na,a\nb,b\n", {}, r"edges.csv has no edge between two distinct nodes"),
])
def test_bad_graph_tables_are_refused_with_the_file_and_row(tmp_path, nodes, edges, options, message):
    folder = write(tmp_path, nodes, edges)
    with pytest.raises(DataError, match=message):
        load_data(folder, **options)


def test_a_short_row_and_non_utf8_are_refused(tmp_path):
    folder = write(tmp_path, "id,f,label\na,1,x\nb,2,y,extra\n", GOOD_EDGES)
    with pytest.raises(DataError, match=r"nodes.csv: .*Expected 3 fields in line 3, saw 4"):
        load_data(folder)
    (tmp_path / "nodes.csv").write_bytes("id,f,label\na,1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"nodes.csv is not UTF-8 text"):
        load_data(folder)


def test_bad_networkx_files_and_options_are_refused(tmp_path):
    path = tmp_path / "g.gml"
    path.write_text("graph [ node [ id 0 ] node ")
    with pytest.raises(DataError, match=r"g.gml: cannot read it as gml"):
        load_data(path, link_prediction=True)
    (tmp_path / "e.edgelist").write_text("")
    with pytest.raises(DataError, match=r"e.edgelist is empty"):
        load_data(tmp_path / "e.edgelist", link_prediction=True)
    (tmp_path / "x.graphml").write_text("<graphml><graph")
    with pytest.raises(DataError, match=r"x.graphml: cannot read it as graphml"):
        load_data(tmp_path / "x.graphml", link_prediction=True)
    nx.write_gml(nx.path_graph(4), path)
    with pytest.raises(DataError, match=r"g.gml has no label column 'label'"):
        load_data(path)
    with pytest.raises(ConfigError, match=r"'features' parameter of from_graph must be one of 'identity', 'degree'"):
        load_data(path, link_prediction=True, features="random")
    with pytest.raises(ConfigError, match=r"data format 'gml' has no option 'edges'"):
        load_data(path, edges="e.csv")


# -- Cora written as tables -------------------------------------------------------------------

def planetoid_root() -> Path:
    """The shared data root holding planetoid/: ../shared/data, or $ARCHLAB_SHARED_DATA."""
    for root in (SHARED_DATA, Path(os.environ.get("ARCHLAB_SHARED_DATA", SHARED_DATA))):
        if (root / "planetoid" / "ind.cora.graph").is_file():
            return root
    pytest.skip(f"the Planetoid Cora files are not in {SHARED_DATA}/planetoid (or $ARCHLAB_SHARED_DATA/planetoid)")


@pytest.fixture(scope="module")
def cora_tables(tmp_path_factory):
    """Cora's graph from the built-in loader, written as nodes.csv (id, the 1433 row-normalized
    features, label, the public split) and edges.csv (each undirected edge once)."""
    root = planetoid_root()
    cora = load_dataset("cora", root)
    graph = cora.train.graph
    x = graph.dense_x().numpy()
    nodes = pd.DataFrame(x, columns=[f"w{i}" for i in range(x.shape[1])])
    nodes.insert(0, "id", np.arange(graph.num_nodes))
    nodes["label"] = graph.y.numpy()
    split = np.full(graph.num_nodes, "", dtype=object)
    for name in SPLITS:
        split[getattr(graph, f"{name}_mask").numpy()] = name
    nodes["split"] = split
    folder = tmp_path_factory.mktemp("cora")
    nodes.to_csv(folder / "nodes.csv", index=False, float_format="%.9g")  # 9 digits round-trip float32
    s, t = graph.edge_index.numpy()
    pd.DataFrame({"source": s[s < t], "target": t[s < t]}).to_csv(folder / "edges.csv", index=False)
    return root, cora, folder


def test_cora_as_tables_is_the_built_in_graph(cora_tables):
    _, cora, folder = cora_tables
    data = load_data(folder, split_column="split")
    mine, theirs = data.train.graph, cora.train.graph
    assert mine.x.layout == torch.sparse_coo  # bag-of-words stays sparse, as the loader keeps it
    torch.testing.assert_close(mine.x.to_dense(), theirs.x.to_dense(), rtol=0, atol=0)
    for name in ("edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(mine, name), getattr(theirs, name)), name


def test_cora_as_tables_gives_the_built_in_gcn_accuracy_in_a_short_run(cora_tables):
    root, _, folder = cora_tables
    mine = archlab.train("gcn", load_data(folder, split_column="split"), epochs=10, quiet=True)
    theirs = archlab.train("gcn", "cora", data_dir=root, epochs=10, quiet=True)
    assert abs(mine.metrics["test_accuracy"] - theirs.metrics["test_accuracy"]) <= 0.001


@pytest.mark.slow
def test_cora_as_tables_gives_the_built_in_gcn_accuracy(cora_tables):
    root, _, folder = cora_tables
    mine = archlab.train("gcn", load_data(folder, split_column="split"), quiet=True)
    theirs = archlab.train("gcn", "cora", data_dir=root, quiet=True)
    assert abs(mine.metrics["test_accuracy"] - theirs.metrics["test_accuracy"]) <= 0.001


def test_a_new_labeled_graph_scores_its_labelled_nodes_and_a_link_predictor_refuses(tmp_path):
    from archlab.data.graph_files import labeled_graph

    data = load_data(karate_tables(tmp_path / "karate"))
    new = karate_tables(tmp_path / "new")
    nodes = pd.read_csv(new / "nodes.csv")
    nodes.loc[3, "label"] = None  # an unlabelled node is not scored
    nodes.to_csv(new / "nodes.csv", index=False)
    split = labeled_graph(new, data.spec)
    assert len(split) == 33 and not split.mask[3] and split.graph.x.shape == (34, 2)
    assert split.graph.y[split.mask].tolist() == [int(c == "Officer") for c in nodes["label"].dropna()]
    nodes.loc[5, "label"] = "Coach"
    nodes.to_csv(new / "nodes.csv", index=False)
    with pytest.raises(DataError, match="line 7 has the class 'Coach' of target 'label'"):
        labeled_graph(new, data.spec)
    links = load_data(tmp_path / "karate", link_prediction=True).spec
    with pytest.raises(ConfigError, match="held-out edges"):
        labeled_graph(new, links)
