"""The view branch of AMV-ML on ONNX Runtime: the faster CPU path of `embed_view_sets` (models/embedding.py).

On a 2-core CPU, ONNX Runtime runs EfficientNet-Lite0's view branch about twice as fast as PyTorch (docs/indexing.md)
and gives the same vectors within float rounding. The engine is a snapshot of the model's weights when it was made:
made once per index build from weights read from a file, never for a model that is still training.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import torch
from torch import nn

from photo2cad.models.amvml import AMVML

log = logging.getLogger(__name__)


class _ViewBranch(nn.Module):
    """uint8 grey views (B, V, S, S, 3) -> (shape vectors (B, D'), view embeddings (B, V, D)), as embed_view_sets."""

    def __init__(self, model: AMVML) -> None:
        super().__init__()
        self.model = model

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = views.permute(0, 1, 4, 2, 3).float() / 255.0  # views_to_tensor, with axes ONNX can name
        out = self.model.embed_views(pixels)
        return out.vector, out.view_embeddings


class OnnxViewEngine:
    """AMV-ML's view branch exported to ONNX and run by ONNX Runtime on the CPU."""

    def __init__(self, model: AMVML, threads: int | None = None) -> None:
        import onnxruntime

        model.eval()
        config = model.config
        example = torch.zeros((1, config.num_views, config.image_size, config.image_size, 3), dtype=torch.uint8)
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                _ViewBranch(model),
                (example,),
                buffer,  # type: ignore[arg-type]  # a file object is documented and works
                input_names=["views"],
                output_names=["vectors", "view_embeddings"],
                dynamic_axes={"views": {0: "shapes", 1: "views"}},
                opset_version=17,
                dynamo=False,
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, V, S, S, 3) uint8 -> (N, D) shape vectors and (N, V, D) view embeddings, float32."""
        vectors, view_embeddings = self._session.run(None, {"views": np.ascontiguousarray(grey, dtype=np.uint8)})
        return np.asarray(vectors, np.float32), np.asarray(view_embeddings, np.float32)


def onnx_view_engine(model: AMVML, device: torch.device) -> OnnxViewEngine | None:
    """The ONNX Runtime engine for embedding views of `model` on the CPU; None on a GPU (PyTorch is the fast path
    there) or when ONNX Runtime is missing or cannot take the model (the log says why; PyTorch then embeds)."""
    if device.type != "cpu":
        return None
    try:
        engine = OnnxViewEngine(model)
    except ImportError:
        log.info("onnxruntime is not installed: views are embedded with PyTorch")
        return None
    except Exception as err:  # noqa: BLE001 - an export the runtime refuses only costs speed, never the build
        log.warning("the view branch could not run on ONNX Runtime (%s: %s): embedding with PyTorch", type(err), err)
        return None
    log.info("embedding views with ONNX Runtime on the CPU")
    return engine
