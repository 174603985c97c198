"""The deterministic weight rule of the official-equivalence fixtures (golden README §1).

Used for stand-in weights (files marked ``standin``) and for equivalence tests against the
official implementation: every ``state_dict`` entry is replaced by values drawn from a CPU
generator seeded with the CRC-32 of its key, so any two implementations with the same key names
and shapes get bit-identical weights.
"""

from __future__ import annotations

import zlib

import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def rule_tensor(key: str, like: torch.Tensor, norm_weight: bool = False) -> torch.Tensor:
    """Return the rule's value for one entry.

    Args:
        key: the entry's key relative to the module the rule is applied to (e.g. ``conv1.0.weight``).
        like: the current tensor; only its shape and dtype are used.
        norm_weight: True when ``key`` is the ``.weight`` of a BatchNorm/LayerNorm/GroupNorm module.

    Returns:
        A new CPU tensor of ``like``'s shape and dtype: zeros for integer entries,
        ``1 + U[0,1)`` for ``running_var``, ``1 + 0.1·N(0,1)`` for norm weights, else ``0.05·N(0,1)``
        (all drawn in float64, then cast).
    """
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    if not like.is_floating_point():
        return torch.zeros(like.shape, dtype=like.dtype)
    if key.endswith("running_var"):
        value = 1.0 + torch.rand(like.shape, generator=generator, dtype=torch.float64)
    elif norm_weight:
        value = 1.0 + 0.1 * torch.randn(like.shape, generator=generator, dtype=torch.float64)
    else:
        value = torch.randn(like.shape, generator=generator, dtype=torch.float64) * 0.05
    return value.to(like.dtype)


def rule_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The rule applied to every entry of ``module.state_dict()`` (keys relative to ``module``)."""
    norm_weights = {
        f"{name}.weight" if name else "weight"
        for name, child in module.named_modules()
        if isinstance(child, _NORM_TYPES)
    }
    return {
        key: rule_tensor(key, tensor, norm_weight=key in norm_weights)
        for key, tensor in module.state_dict().items()
    }


def apply_rule(module: nn.Module) -> nn.Module:
    """Load the rule's weights into ``module`` in place (``strict=True``) and return it."""
    module.load_state_dict(rule_state_dict(module), strict=True)
    return module
