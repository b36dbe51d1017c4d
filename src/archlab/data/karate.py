"""Zachary's karate club, embedded (from networkx): 34 members, 78 friendships.

Labels are the two factions the club split into (networkx's ``club`` attribute:
0 = "Mr. Hi", 1 = "Officer"), not PyG's four modularity communities. Features are the
one-hot identity (each member its own feature), as in Kipf & Welling's karate demo.
Semi-supervised split: the two leaders (node 0, Mr. Hi; node 33, the officer John A.) are
the only training labels; the other 32 members are split evenly, by `seed`, into
validation and test.
"""

from __future__ import annotations

import numpy as np

from .base import Dataset
from .graph import Graph, graph_dataset, index_mask
from .registry import register_dataset

CLASS_NAMES = ["Mr. Hi", "Officer"]
LEADERS = (0, 33)


def karate_graph(seed: int = 0) -> Graph:
    import networkx as nx

    g = nx.karate_club_graph()
    graph = Graph.from_networkx(g, label="club")  # names numbered in sorted order: "Mr. Hi" 0, "Officer" 1
    rest = np.random.default_rng(seed).permutation([i for i in range(graph.num_nodes) if i not in LEADERS])
    half = len(rest) // 2
    n = graph.num_nodes
    return graph.with_masks(train_mask=index_mask(np.array(LEADERS), n), val_mask=index_mask(np.sort(rest[:half]), n),
                            test_mask=index_mask(np.sort(rest[half:]), n))


@register_dataset("karate", kind="graph",
                  description="Zachary's karate club (34 nodes, 2 factions); 2 labelled leaders, 16 val, 16 test")
def load_karate(root, seed: int = 0) -> Dataset:
    return graph_dataset(karate_graph(seed), "karate", 2, CLASS_NAMES, seed)
