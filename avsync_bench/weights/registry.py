"""Every pretrained file avsync-bench uses: name, official URL, file name, checksum, licence.

Sources are PROTOCOL.md §5 ("Weights"). ``sha256`` is set where the publisher gives one;
``sha256_prefix`` where only a prefix is published (pytorch-fid names its file after the first
8 hex digits of its sha256). Files with neither are pinned at first download or import
(``pins.json`` in the weights folder) and verified against that pin thereafter.
"""

from __future__ import annotations

from dataclasses import dataclass

from avsync_bench.errors import UnknownNameError

__all__ = ["WeightSpec", "REGISTRY", "get_spec"]


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained file (or folder).

    Attributes:
        name: registry name used on the command line (``avsync-bench weights fetch NAME``).
        filename: name inside the weights folder.
        url: the official download location.
        licence: the weights' licence as published.
        used_by: what in avsync-bench needs it.
        sha256: published full sha256, if any.
        sha256_prefix: published sha256 prefix, if only that is published.
        folder: True for a folder (imported from a local copy, hashed over its files).
        direct: True when ``url`` serves the file itself (``fetch`` can download it); False for
            pages that need a browser (Google Drive folders, Dropbox shares, hub repositories).
    """

    name: str
    filename: str
    url: str
    licence: str
    used_by: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    folder: bool = False
    direct: bool = True


REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in [
        WeightSpec(
            name="fid_inception",
            filename="pt_inception-2015-12-05-6726825d.pth",
            url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            licence="Apache-2.0 (pytorch-fid port of TensorFlow's Inception 2015-12-05)",
            used_by="FID (pool3 features)",
            sha256_prefix="6726825d",
        ),
        WeightSpec(
            name="i3d_torchscript",
            filename="i3d_torchscript.pt",
            url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
            licence="Apache-2.0 (StyleGAN-V export of the Kinetics-400 I3D)",
            used_by="FVD (400-d I3D logits; TorchScript, loading it runs code from the file)",
        ),
        WeightSpec(
            name="imagebind_huge",
            filename="imagebind_huge.pth",
            url="https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
            licence="CC BY-NC-SA 4.0 (non-commercial)",
            used_by="IA, IT, AlignSync; AVSyncD audio tokens",
        ),
        WeightSpec(
            name="avsync_classifier",
            filename="avsync_classifier",
            url="https://drive.google.com/drive/folders/1Paqjad4a8mjujMJBEYqmnNEgGPi595lb",
            licence="as the ASVA code release (see lzhangbj/ASVA)",
            used_by="RelSync, AlignSync (folder with modules/{audio_encoder,video_encoder,head}/)",
            folder=True,
            direct=False,
        ),
        WeightSpec(
            name="avid_cma_audioset",
            filename="AVID-CMA_Audioset_InstX-N1024-PosW-N64-Top32_checkpoint.pth.tar",
            url="https://dl.fbaipublicfiles.com/avid-cma/checkpoints/"
            "AVID-CMA_Audioset_InstX-N1024-PosW-N64-Top32_checkpoint.pth.tar",
            licence="CC BY-NC 4.0 (AVID-CMA)",
            used_by="initialisation of the AV-sync classifier for training",
        ),
        WeightSpec(
            name="stable_diffusion_v1_5",
            filename="stable-diffusion-v1-5",
            url="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5",
            licence="CreativeML OpenRAIL-M",
            used_by="AVSyncD base (VAE, CLIP text encoder, 2D UNet); AADiff",
            folder=True,
            direct=False,
        ),
        WeightSpec(
            name="avsyncd_avsync15",
            filename="avsyncd_avsync15",
            url="https://drive.google.com/drive/folders/17ZYopMVM1ZuJ1CBZPzhwAyOa4rR9Eo-_",
            licence="as the ASVA code release (see lzhangbj/ASVA)",
            used_by="AVSyncD reference model, AVSync15 checkpoint (37k steps)",
            folder=True,
            direct=False,
        ),
        WeightSpec(
            name="avsyncd_landscapes",
            filename="avsyncd_landscapes",
            url="https://drive.google.com/drive/folders/1Wa0wK9D_qlkT8U2O8zCz6UoQql-A3zjD",
            licence="as the ASVA code release (see lzhangbj/ASVA)",
            used_by="AVSyncD reference model, Landscapes checkpoint (24k steps)",
            folder=True,
            direct=False,
        ),
        WeightSpec(
            name="avsyncd_thegreatesthits",
            filename="avsyncd_thegreatesthits",
            url="https://drive.google.com/drive/folders/1u8Ksc9TrDhcr6tV_7xH9RsbdkklH-2y9",
            licence="as the ASVA code release (see lzhangbj/ASVA)",
            used_by="AVSyncD reference model, TheGreatestHits checkpoint (16k steps)",
            folder=True,
            direct=False,
        ),
    ]
}


def get_spec(name: str) -> WeightSpec:
    """The registry entry ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown weights {name!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None
