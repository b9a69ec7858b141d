"""A test plugin: a metric declared and registered outside benchmark/metrics (one file, one
registration line), to show that validation, evaluation and the report pick it up."""

import pydantic

from benchmark.metrics.registry import Column, Metric, Needs, register


class Params(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    dummy_scale: float = pydantic.Field(1.0, gt=0, description="multiplies the MSE")
    dummy_fail: bool = pydantic.Field(False, description="raise instead of computing")


def compute(ctx, params: Params) -> tuple[dict[str, float], dict[str, str]]:
    if params.dummy_fail:
        raise RuntimeError("dummy failed on purpose\nwith a second line that is not shown")
    return {"dummy": params.dummy_scale * ctx.test_pass["mse"]}, {
        "dummy": f"MSE times {params.dummy_scale}"
    }


METRIC = Metric(
    name="dummy",
    description="the MSE times eval.dummy_scale (a test plugin)",
    columns=(Column("dummy", "Dummy score", ".6f", better="lower"),),
    compute=compute,
    params=Params,
    test_params={"dummy_scale": 2.0},
    needs=Needs(min_latent_dim=3),
    provenance=(("Dummy", "dummy", None),),
)
register(METRIC)
