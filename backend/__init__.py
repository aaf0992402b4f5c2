"""camadas backend: device selection and NumPy/CuPy dispatch.

Knows nothing of layers. Ops pick CPU or GPU code from their input arrays
(:func:`get_array_module`); the current device only decides where *new*
arrays (parameters, batches) are allocated.

Example
-------
>>> import backend
>>> dev = backend.set_device("auto")      # GPU if one answers, else CPU
>>> xp = backend.get_array_module(backend.to_device([1.0, 2.0]))
"""

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from .arrays import (
    device_of,
    get_array_module,
    is_cupy_array,
    synchronize,
    to_device,
    to_numpy,
)
from .cupy_probe import has_cupy, has_gpu, unavailable_reason
from .device import (
    CPU,
    ENV_VAR,
    Device,
    DeviceUnavailableError,
    get_device,
    resolve_device,
    set_device,
    use_device,
)
from .dtypes import (
    SUPPORTED_DTYPES,
    check_dtype,
    check_float_array,
    get_default_dtype,
    set_default_dtype,
    use_dtype,
)
from .host import cpu_description, limit_threads, thread_pools
from .random import generator_for, rng

__all__ = [
    "CPU",
    "ENV_VAR",
    "SUPPORTED_DTYPES",
    "Device",
    "DeviceUnavailableError",
    "check_dtype",
    "check_float_array",
    "cpu_description",
    "device_of",
    "generator_for",
    "get_array_module",
    "get_default_dtype",
    "get_device",
    "has_cupy",
    "has_gpu",
    "is_cupy_array",
    "limit_threads",
    "resolve_device",
    "rng",
    "set_default_dtype",
    "set_device",
    "synchronize",
    "thread_pools",
    "to_device",
    "to_numpy",
    "unavailable_reason",
    "use_device",
    "use_dtype",
]
