"""Datasets behind one interface: `load_dataset(name)` gives a `Dataset` with a
`DataSpec` and train/val/test splits. Importing this package registers them."""

from . import embedded, mnist  # noqa: F401  (registration)
from . import corpora  # noqa: F401  (registration: tinyshakespeare, arithmetic, sst2)
from . import karate, planetoid  # noqa: F401  (registration: karate, cora, citeseer, pubmed)
from .graph import Graph, GraphSplit
from .image_folder import from_image_folder
from .base import Dataset, DataSpec, TensorSplit
from .files import read_inputs
from .idx import IDXFormatError, parse_idx, read_idx, write_idx
from .paths import default_data_dir, resolve_data_dir
from .registry import dataset_info, list_datasets, load_dataset, register_dataset
from .sources import list_formats, load_data, register_format
from .graph_files import from_graph  # (registration: graph-tables, edgelist, graphml, gml)
from .graph_collection import GraphCollection, write_graph_collection  # (registration: graph-collection, ...)
from .text_files import from_text  # (registration: text-table, text)
from .tables import from_arrays, from_table  # (registration: csv, tsv, parquet)
from .fewshot import NWayKShot, TaskBatch
from .omniglot import Omniglot
from .sinusoid import Sinusoid
from .episodes import FEWSHOT_SOURCES, EpisodeSplit, task_sampler

__all__ = [
    "Dataset", "DataSpec", "TensorSplit", "load_dataset", "list_datasets", "dataset_info", "register_dataset",
    "read_idx", "write_idx", "parse_idx", "IDXFormatError", "resolve_data_dir", "default_data_dir", "read_inputs",
]
__all__ += ["Graph", "GraphSplit", "load_data", "register_format", "list_formats", "from_table", "from_arrays"]
__all__ += ["TaskBatch", "NWayKShot", "Omniglot", "Sinusoid", "task_sampler", "EpisodeSplit", "FEWSHOT_SOURCES"]
__all__ += ["from_graph", "from_text", "from_image_folder", "GraphCollection", "write_graph_collection"]
