"""A test plugin that imports in the user's directory but not inside a Ray trial, where it
raises a pydantic ValidationError (Ray wraps it in a RayTaskError; Tune's error.txt ends with
pydantic's documentation URL). The recorded reason must be the error's own message."""

import os

import pydantic


class _UserDir(pydantic.BaseModel):
    cwd: str

    @pydantic.field_validator("cwd")
    @classmethod
    def _in_user_dir(cls, v: str) -> str:
        if v != os.environ.get("VAEBENCH_TEST_USER_DIR", v):
            raise ValueError("this plugin only imports in the user's directory")
        return v


_UserDir(cwd=os.getcwd())
