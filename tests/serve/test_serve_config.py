"""serve/config.yaml is a valid Serve config (Ray Serve's own schema, offline), its import path is
the application builder, and its args build the deployment it describes; the builder's scaling and
resource options, without starting Ray."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

from serve.deployment import DEPLOYMENT, EncoderDeployment, app_builder, build_deployment
from serve.options import DeploymentOptions
from uts.store import Store

CONFIG = Path(__file__).parents[2] / "serve" / "config.yaml"


def deployment_of(app: Any) -> Any:
    return app._bound_deployment  # Serve keeps the bound Deployment on the Application


def test_config_file_is_a_valid_serve_config_whose_import_path_builds_the_app(
    serve_store: Store, mtc_checkpoint: str, tmp_path: Path
) -> None:
    from ray._common.utils import import_attr
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    assert config.http_options.port == 8000
    (app,) = config.applications
    builder = import_attr(app.import_path)
    assert builder is app_builder and len(inspect.signature(builder).parameters) == 1
    args = dict(app.args)
    assert {"store", "run", "token_file", "max_batch", "autoscale"} <= set(args)
    token = tmp_path / "token"
    token.write_text("t")
    # The same args against the test store (the file's own point at a cluster's S3 bucket).
    args.update(store=serve_store.root_uri, token_file=str(token), run=None,
                checkpoint=mtc_checkpoint)  # fmt: skip
    deployment = deployment_of(builder({k: v for k, v in args.items() if v is not None}))
    assert deployment.name == DEPLOYMENT
    scaling = deployment._deployment_config.autoscaling_config
    assert (scaling.min_replicas, scaling.max_replicas) == (1, 4)
    assert scaling.target_ongoing_requests == args["target_ongoing_requests"]
    assert deployment.ray_actor_options["num_gpus"] == args["num_gpus"]
    assert deployment.ray_actor_options["num_cpus"] == args["num_cpus"]
    assert deployment.max_ongoing_requests == 2 * args["max_batch"]
    checkpoint, settings = deployment.init_args
    assert checkpoint == mtc_checkpoint and settings.token == "t"
    assert settings.max_items == args["max_items"]


@pytest.mark.parametrize(
    ("scale", "replicas", "autoscaling"),
    [({"replicas": 3}, 3, None), ({"autoscale": (0, 2), "max_batch": 4}, None, (0, 2, 4.0))],
)
def test_builder_scaling_and_resources(
    mtc_checkpoint: str, scale: dict[str, Any], replicas: int | None,
    autoscaling: tuple[int, int, float] | None,
) -> None:  # fmt: skip
    options = DeploymentOptions(checkpoint=mtc_checkpoint, num_gpus=1, num_cpus=2.0, **scale)
    deployment = deployment_of(build_deployment(options))
    assert deployment.func_or_class.__name__ == EncoderDeployment.func_or_class.__name__
    assert deployment.ray_actor_options["num_gpus"] == 1
    assert deployment.ray_actor_options["num_cpus"] == 2.0
    assert deployment.init_kwargs["max_batch"] == options.max_batch
    config = deployment._deployment_config.autoscaling_config
    if autoscaling is None:
        assert config is None and deployment.num_replicas == replicas
    else:
        assert (config.min_replicas, config.max_replicas) == autoscaling[:2]
        assert config.target_ongoing_requests == autoscaling[2]  # default: one batch per replica
        assert config.initial_replicas == 1  # a replica up front even when MIN is 0
