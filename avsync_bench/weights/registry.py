"""Every pretrained file avsync-bench uses: name, official URL, file name, checksum, licence.

Sources are PROTOCOL.md §5 ("Weights"). ``sha256`` is set where the publisher gives one;
``sha256_prefix`` where only a prefix is published (pytorch-fid names its file after the first
8 hex digits of its sha256). Hub repositories are pinned to a commit; every LFS file is checked
against the sha256 the Hub publishes for it at that commit (git blob id for small files). Files
and folders with no published checksum are pinned at first download or import (``pins.json`` in
the weights folder) and verified against that pin thereafter.

Three kinds of source (``WeightSpec.source``): ``url`` (a direct download), ``hub`` (a Hugging
Face repository, :class:`HubSource`) and ``drive`` (a public Google Drive folder, downloaded
with gdown). Sizes are the download sizes as published (approximate where marked ``≈``).
"""

from __future__ import annotations

from dataclasses import dataclass

from avsync_bench.errors import UnknownNameError

__all__ = ["HubSource", "WeightSpec", "REGISTRY", "get_spec"]


@dataclass(frozen=True)
class HubSource:
    """Files of a Hugging Face repository.

    Attributes:
        repo_id: ``owner/name``.
        repo_type: ``model``, ``dataset`` or ``space``.
        revision: the pinned commit (40 hex digits), or None: then the branch head is resolved
            to a commit at first download and that commit is pinned in ``pins.json``.
        allow_patterns: the files to download (``fnmatch`` patterns on repository paths).
        subfolder: repository folder that becomes the local folder's root ("" for the root).
    """

    repo_id: str
    repo_type: str
    revision: str | None
    allow_patterns: tuple[str, ...]
    subfolder: str = ""


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
        folder: True for a folder (hashed over its relative paths and files).
        source: ``url`` (``url`` serves the file itself), ``hub`` (``hub``) or ``drive``
            (``url`` is a public Google Drive folder).
        size: the download size as published (``≈`` where approximate or unconfirmed).
        hub: the repository, for ``source == "hub"``.
        fallback_drive: a Google Drive folder tried when the hub repository lacks the files.
    """

    name: str
    filename: str
    url: str
    licence: str
    used_by: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    folder: bool = False
    source: str = "url"
    size: str = "?"
    hub: HubSource | None = None
    fallback_drive: str | None = None

    @property
    def direct(self) -> bool:
        """True when ``url`` serves the file itself."""
        return self.source == "url"


_DRIVE = "https://drive.google.com/drive/folders/"
DRIVE_AVSYNC15 = _DRIVE + "17ZYopMVM1ZuJ1CBZPzhwAyOa4rR9Eo-_"
DRIVE_LANDSCAPES = _DRIVE + "1Wa0wK9D_qlkT8U2O8zCz6UoQql-A3zjD"
DRIVE_THEGREATESTHITS = _DRIVE + "1u8Ksc9TrDhcr6tV_7xH9RsbdkklH-2y9"

#: stable-diffusion-v1-5/stable-diffusion-v1-5 (the maintained mirror of the withdrawn
#: runwayml repository) at the commit used by diffusers-based projects.
SD15_REVISION = "451f4fe16113bff5a5d2269ed5ad43b0592e9a14"

#: What AVSyncD and AADiff load from SD-1.5 (fp32 safetensors only; no .bin, fp16, non-EMA or
#: single-file checkpoints, no safety checker).
SD15_PATTERNS = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "tokenizer/*",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
)

#: Training steps of the released AVSyncD checkpoints (ASVA README).
AVSYNCD_STEPS = {"avsync15": 37000, "landscapes": 24000, "thegreatesthits": 16000}


def _asva_space(dataset: str) -> HubSource:
    """The author's Hub Space ``Linz99/ASVA``, folder of one released AVSyncD checkpoint.

    The folder follows the official layout (PROTOCOL.md §4); the exact paths and the commit are
    not confirmed, so the head is pinned at first download and the Drive folder is the fallback.
    """
    folder = (
        f"checkpoints/audio-cond_animation/{dataset}_audio-cond_cfg/ckpts/"
        f"checkpoint-{AVSYNCD_STEPS[dataset]}"
    )
    return HubSource(
        repo_id="Linz99/ASVA",
        repo_type="space",
        revision=None,
        allow_patterns=(f"{folder}/modules/unet/*",),
        subfolder=folder,
    )


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
            size="≈91 MB",
        ),
        WeightSpec(
            name="i3d_torchscript",
            filename="i3d_torchscript.pt",
            url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
            licence="Apache-2.0 (StyleGAN-V export of the Kinetics-400 I3D)",
            used_by="FVD (400-d I3D logits; TorchScript, loading it runs code from the file)",
            size="≈51 MB",
        ),
        WeightSpec(
            name="imagebind_huge",
            filename="imagebind_huge.pth",
            url="https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
            licence="CC BY-NC-SA 4.0 (non-commercial)",
            used_by="IA, IT, AlignSync; AVSyncD audio tokens",
            size="≈4.5 GB",
        ),
        WeightSpec(
            name="avsync_classifier",
            filename="avsync_classifier",
            url="https://drive.google.com/drive/folders/1Paqjad4a8mjujMJBEYqmnNEgGPi595lb",
            licence="as the ASVA code release (see lzhangbj/ASVA)",
            used_by="RelSync, AlignSync (folder with modules/{audio_encoder,video_encoder,head}/)",
            folder=True,
            source="drive",
            size="≈0.2 GB (unconfirmed)",
        ),
        WeightSpec(
            name="avid_cma_audioset",
            filename="AVID-CMA_Audioset_InstX-N1024-PosW-N64-Top32_checkpoint.pth.tar",
            url="https://dl.fbaipublicfiles.com/avid-cma/checkpoints/"
            "AVID-CMA_Audioset_InstX-N1024-PosW-N64-Top32_checkpoint.pth.tar",
            licence="CC BY-NC 4.0 (AVID-CMA)",
            used_by="initialisation of the AV-sync classifier for training",
            size="≈0.2 GB (unconfirmed)",
        ),
        WeightSpec(
            name="stable_diffusion_v1_5",
            filename="stable-diffusion-v1-5",
            url="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5",
            licence="CreativeML OpenRAIL-M",
            used_by="AVSyncD base (VAE, CLIP text encoder, 2D UNet); AADiff",
            folder=True,
            source="hub",
            size="4.3 GB (unet 3.44 GB, text_encoder 492 MB, vae 335 MB)",
            hub=HubSource(
                repo_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
                repo_type="model",
                revision=SD15_REVISION,
                allow_patterns=SD15_PATTERNS,
            ),
        ),
        WeightSpec(
            name="avsyncd_avsync15",
            filename="avsyncd_avsync15",
            url=DRIVE_AVSYNC15,
            licence="as the ASVA code release (see lzhangbj/ASVA)",
            used_by="AVSyncD reference model, AVSync15 checkpoint (37k steps)",
            folder=True,
            source="hub",
            size="≈5 GB (unconfirmed)",
            hub=_asva_space("avsync15"),
            fallback_drive=DRIVE_AVSYNC15,
        ),
        WeightSpec(
            name="avsyncd_landscapes",
            filename="avsyncd_landscapes",
            url=DRIVE_LANDSCAPES,
            licence="as the ASVA code release (see lzhangbj/ASVA)",
            used_by="AVSyncD reference model, Landscapes checkpoint (24k steps)",
            folder=True,
            source="hub",
            size="≈5 GB (unconfirmed)",
            hub=_asva_space("landscapes"),
            fallback_drive=DRIVE_LANDSCAPES,
        ),
        WeightSpec(
            name="avsyncd_thegreatesthits",
            filename="avsyncd_thegreatesthits",
            url=DRIVE_THEGREATESTHITS,
            licence="as the ASVA code release (see lzhangbj/ASVA)",
            used_by="AVSyncD reference model, TheGreatestHits checkpoint (16k steps)",
            folder=True,
            source="hub",
            size="≈5 GB (unconfirmed)",
            hub=_asva_space("thegreatesthits"),
            fallback_drive=DRIVE_THEGREATESTHITS,
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
