"""The one compiled piece: MD5 of several parts at once (cstor/s3/_md5lanes.c).

Optional: where it cannot be built (no C compiler), the install goes on and parts
are hashed one at a time with hashlib (cstor.s3.md5).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cstor.s3._md5lanes",
            sources=["cstor/s3/_md5lanes.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
