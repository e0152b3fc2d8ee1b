"""Block configs: frozen dataclasses that import no Amaranth (golden/ may use them)."""
from .base import ConfigError, ParamSpec, as_dict, build_config, param, specs
from .mac import MacConfig
from .mapping import MappingConfig
from .merger import MergerConfig
from .softmax import SoftmaxConfig
from .spgemm import SpgemmConfig
from .topk import TopkConfig

__all__ = ["ConfigError", "ParamSpec", "as_dict", "build_config", "param", "specs",
           "MacConfig", "MappingConfig", "MergerConfig", "SoftmaxConfig", "SpgemmConfig", "TopkConfig"]
