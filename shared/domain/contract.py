"""The API's models of the domain's shapes, derived from shared/domain/model.py, where each is
declared once (with its descriptions). Here, not in shared/api/, because the alert endpoints'
models (shared/alerts/models.py, below the API) use them too."""

from __future__ import annotations

from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, NotRequired, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.domain import model
from shared.domain.model import Described


class ContractModel(BaseModel):
    # The contract says no other properties, and answers keep to it: a field a newer poll
    # stores that the contract does not list yet is dropped, not served (and never a 500).
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


def _api_type(hint: Any) -> Any:
    """A domain type hint with each domain shape (a TypedDict) replaced by its API model."""
    if get_origin(hint) is Annotated:
        return _api_type(get_args(hint)[0])
    if isinstance(hint, type) and hint in _DERIVED:
        return _DERIVED[hint]
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return Union[tuple(_api_type(arg) for arg in args)]  # noqa: UP007 (built from a tuple)
    if origin in (list, dict):
        return origin[tuple(_api_type(arg) for arg in args)]
    return hint


def derive(shape: Any) -> type[ContractModel]:
    """The API model of a domain shape: the same fields in the same order, required where the
    shape requires them; a NotRequired field (absent from older records) answers null."""
    fields: dict[str, Any] = {}
    for name, hint in get_type_hints(shape, include_extras=True).items():
        required = get_origin(hint) is not NotRequired  # not __required_keys__: wrong for string hints
        if not required:
            hint = get_args(hint)[0]
        metadata = get_args(hint)[1:] if get_origin(hint) is Annotated else ()
        described = [m.text for m in metadata if isinstance(m, Described)]
        default = ... if required else None
        fields[name] = (_api_type(hint), Field(default, description=described[0] if described else None))
    model = create_model(shape.__name__, __base__=ContractModel, __doc__=shape.__doc__, **fields)
    _DERIVED[shape] = model
    return model


_DERIVED: dict[Any, type[ContractModel]] = {}


if TYPE_CHECKING:

    class Actor(ContractModel): ...

else:
    Actor = derive(model.Actor)
