"""Reusable layers, one concept a file."""

from .conv import BasicBlock, ConvBlock
from .activation import ACTIVATIONS, activation
from .mlp import MLP
from .attention import KVCache, MultiHeadAttention
from .patch_embedding import ClassToken, PatchEmbedding
from .positional import LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding
from .transformer import FeedForward, TransformerBlock
from .gelu import TanhGELU, gelu_tanh
from .gaussian import gaussian_kl, reparameterize
from .gat import GATConv
from .gcn import GCNConv, add_remaining_self_loops, dense_gcn_norm, gcn_norm
from .message_passing import MessagePassing
from .sage import SAGEConv
from .gin import GINConv
from .pool import global_max_pool, global_mean_pool, global_sum_pool
from .scatter import edge_softmax, scatter
from .sparse import adjacency_to_edge_index, edge_index_to_adjacency

__all__ = ["MLP", "ConvBlock", "BasicBlock", "activation", "ACTIVATIONS"]
__all__ += ["MultiHeadAttention", "KVCache", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
            "RotaryEmbedding", "PatchEmbedding", "ClassToken", "TransformerBlock", "FeedForward", "TanhGELU",
            "gelu_tanh",
            "gaussian_kl", "reparameterize"]
__all__ += ["MessagePassing", "GCNConv", "GATConv", "SAGEConv", "GINConv",
            "gcn_norm", "dense_gcn_norm", "add_remaining_self_loops", "scatter",
            "edge_softmax", "global_sum_pool", "global_mean_pool", "global_max_pool", "adjacency_to_edge_index",
            "edge_index_to_adjacency"]
