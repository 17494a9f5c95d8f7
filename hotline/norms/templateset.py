"""The templates a server or client holds, and which one an agreement means. Pure.

An agreement pins ``{id, version, sha256}``; ``TemplateSet.resolve`` finds the template with that
exact digest. A template file edited after the parties signed has another digest: the envelope is
refused (``template.mismatch``) rather than checked against rules nobody agreed to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from hotline.errorcodes import Code
from hotline.errors import ConfigError, ProtocolViolation
from hotline.norms.agreement import Agreement
from hotline.norms.template import Template


class TemplateSet:
    def __init__(self, templates: Iterable[Template] = ()) -> None:
        self._by_digest: dict[str, Template] = {}
        self._by_id: dict[str, list[Template]] = {}
        for template in templates:
            self.add(template)

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> TemplateSet:
        """Templates from ``{file name: bytes}``; ConfigError names the first bad file."""
        return cls(Template.from_text(data, source=name) for name, data in sorted(files.items()))

    def add(self, template: Template) -> None:
        for other in self._by_id.get(template.id, []):
            if other.version == template.version and other.sha256 != template.sha256:
                raise ConfigError(f"{template.id} version {template.version} is also defined, "
                                  f"differently, in {other.source}: give a changed template a "
                                  "new version", file=template.source, path=("version",))
        if template.sha256 not in self._by_digest:
            self._by_digest[template.sha256] = template
            self._by_id.setdefault(template.id, []).append(template)

    def __iter__(self) -> Iterator[Template]:
        return iter(self._by_digest.values())

    def __len__(self) -> int:
        return len(self._by_digest)

    def latest(self, template_id: str) -> Template | None:
        versions = self._by_id.get(template_id)
        return max(versions, key=lambda t: t.version) if versions else None

    def by_digest(self, sha256: str) -> Template | None:
        return self._by_digest.get(sha256)

    def resolve(self, agreement: Agreement, template_id: str) -> Template:
        """The template ``agreement`` pins under ``template_id``.

        Raises:
            ProtocolViolation: ``template.unknown`` if the agreement does not name it;
                ``template.mismatch`` if no held file has the pinned digest (edited or missing).
        """
        ref = next((t for t in agreement.templates if t.id == template_id), None)
        if ref is None:
            agreed = ", ".join(sorted(t.id for t in agreement.templates))
            raise ProtocolViolation(f"template {template_id!r} is not in the agreement of channel "
                                    f"{agreement.channel} (agreed: {agreed})", code=Code.TEMPLATE_UNKNOWN)
        template = self._by_digest.get(ref.sha256)
        if template is not None and template.id == ref.id and template.version == ref.version:
            return template
        held = [t for t in self._by_id.get(template_id, []) if t.version == ref.version]
        if held:
            raise ProtocolViolation(
                f"template {template_id} version {ref.version}: the agreement of channel "
                f"{agreement.channel} pins sha256 {ref.sha256[:16]}…, but {held[0].source} has "
                f"sha256 {held[0].sha256[:16]}…; the file was changed after the parties signed",
                code=Code.TEMPLATE_MISMATCH)
        raise ProtocolViolation(f"template {template_id} version {ref.version} (sha256 "
                                f"{ref.sha256[:16]}…) is not installed here (no valid template file "
                                "has that digest)", code=Code.TEMPLATE_MISMATCH)

    def agreed(self, agreement: Agreement) -> list[Template]:
        """The templates of ``agreement`` held here with the pinned digest, in agreement order."""
        found = (self._by_digest.get(ref.sha256) for ref in agreement.templates)
        return [t for t in found if t is not None]
