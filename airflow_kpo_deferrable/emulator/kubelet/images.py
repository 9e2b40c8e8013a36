"""Image references and pulls as containerd reports them.

Why: the operator tells ErrImagePull, ImagePullBackOff and InvalidImageName apart by the waiting reason and message,
and ``containerStatuses[].image`` shows the fully qualified reference (``docker.io/library/busybox:latest``).

Facts: references parse like containerd's ``reference.ParseNormalizedNamed`` (a first component with a dot, a colon
or ``localhost`` is a registry; ``docker.io/library/`` for bare names; uppercase letters are invalid). No image is
really pulled: only registries ending in ``.invalid`` fail, with containerd's ``no such host`` message. Whether an
image is "pulled" or "already present" follows the container's pull policy (``rules.pull_policy``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?P<name>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>\w[\w.-]{{0,127}}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)
_DOMAIN = re.compile(r"^(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?:\.[a-zA-Z0-9-]+|:[0-9]+))$")


@dataclass(frozen=True)
class ImageRef:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        """The fully qualified reference containerd reports, e.g. ``docker.io/library/busybox:latest``."""
        text = f"{self.domain}/{self.path}"
        if self.tag or not self.digest:
            text += f":{self.tag or 'latest'}"
        return text + (f"@{self.digest}" if self.digest else "")


class InvalidImage(ValueError):
    pass


def parse_image(image: str) -> ImageRef:
    """Parse like containerd's reference.ParseNormalizedNamed; ``InvalidImage`` carries the kubelet's message."""
    domain, _, rest = image.partition("/")
    if not rest or not _DOMAIN.match(domain):
        domain, rest = "docker.io", image
    if domain == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    match = _REFERENCE.match(rest)
    if match is None:
        name = rest.split("@")[0].rsplit(":", 1)[0] if rest else rest
        problem = "invalid reference format"
        if name and name != name.lower():
            problem += f": repository name ({name}) must be lowercase"
        raise InvalidImage(
            f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": {problem}'
        )
    return ImageRef(domain, match["name"], match["tag"], match["digest"])


def pull_error(ref: ImageRef) -> str | None:
    """Why pulling ``ref`` fails, as containerd says it, or None: only ``*.invalid`` registries fail."""
    host = ref.domain.split(":")[0]
    if not host.endswith(".invalid"):
        return None
    reference = f"{ref.domain}/{ref.path}:{ref.tag or 'latest'}"
    return (
        f'failed to pull and unpack image "{reference}": failed to resolve reference "{reference}": failed to do '
        f'request: Head "https://{ref.domain}/v2/{ref.path}/manifests/{ref.tag or "latest"}": dial tcp: lookup '
        f"{host}: no such host"
    )

