"""Neutron-format INI files -> a frozen ``Settings``.

Contract:
- files are read in order; a later file overrides an earlier one option by option;
- sections Baryon does not know (``[securitygroup]``, ``[ovs]``, ...) are accepted silently;
- an unknown option in a known section is a warning (returned, and logged by the caller);
- an invalid value raises ``ConfigError`` naming the file, the section and the option;
- values are taken raw: ``%`` is not interpolated, ``#`` and ``;`` start comment lines, as oslo.config.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
from dataclasses import dataclass, field

from baryon.config import options


class ConfigError(Exception):
    """A configuration file cannot be used; the message names file, section and option."""


@dataclass(frozen=True)
class Settings:
    DEFAULT: options.DefaultSection = field(default_factory=options.DefaultSection)
    database: options.DatabaseSection = field(default_factory=options.DatabaseSection)
    ml2: options.Ml2Section = field(default_factory=options.Ml2Section)
    ml2_type_flat: options.Ml2TypeFlatSection = field(default_factory=options.Ml2TypeFlatSection)
    ml2_type_vlan: options.Ml2TypeVlanSection = field(default_factory=options.Ml2TypeVlanSection)
    ml2_type_vxlan: options.Ml2TypeVxlanSection = field(default_factory=options.Ml2TypeVxlanSection)
    quotas: options.QuotasSection = field(default_factory=options.QuotasSection)
    baryon: options.BaryonSection = field(default_factory=options.BaryonSection)
    oslo_middleware: options.OsloMiddlewareSection = field(default_factory=options.OsloMiddlewareSection)
    config_files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def database_url(self) -> str:
        return self.database.connection or options.default_connection(self.DEFAULT.state_path)


def _read(path: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(
        strict=False, interpolation=None, default_section="\0none", comment_prefixes=("#", ";"),
        inline_comment_prefixes=None, empty_lines_in_values=False,
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # option names are case-sensitive
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not an INI file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    return parser


def load(paths: list[str] | tuple[str, ...] = (), overrides: dict[str, dict[str, str]] | None = None) -> Settings:
    """Parse ``paths`` in order, then apply ``overrides`` ({section: {option: raw}})."""
    built, warnings, sources, origin = parse_sections(paths, options.SECTIONS, options.IGNORED, overrides)
    settings = Settings(**built, config_files=sources, warnings=warnings)
    _check(settings, origin)
    return settings


def parse_sections(paths: list[str] | tuple[str, ...], sections: dict[str, type], ignored: dict[str, frozenset[str]],
                   overrides: dict[str, dict[str, str]] | None = None, quiet: frozenset[str] = frozenset(),
                   ) -> tuple[dict[str, object], tuple[str, ...], tuple[str, ...], dict[str, dict[str, str]]]:
    """The section dataclasses of ``sections`` filled from ``paths``.

    Returns (section name -> instance, warnings, the files read, section -> option -> where it came from).
    Unknown options of a section in ``quiet`` are not warned about (e.g. an agent reading the shared
    ``[DEFAULT]`` of neutron.conf, full of the server's options).
    """
    raw: dict[str, dict[str, tuple[str, str]]] = {name: {} for name in sections}
    warnings: list[str] = []
    sources = [(os.path.abspath(p), _read(p)) for p in paths]
    for path, parser in sources:
        for found in parser.sections():
            # NOTE: as oslo.config, section names other than DEFAULT are case-insensitive ([AGENT] is [agent]).
            section = found if found == "DEFAULT" else found.lower()
            if section not in sections:
                continue
            known = {f.name for f in dataclasses.fields(sections[section])}
            for name, value in parser.items(found):
                if name in known:
                    raw[section][name] = (value, path)
                elif name not in ignored.get(section, frozenset()) and section not in quiet:
                    warnings.append(f"{path}: [{section}] unknown option {name!r} ignored")
    for section, values in (overrides or {}).items():
        for name, value in values.items():
            raw[section][name] = (value, "<override>")
    built = {}
    for section, cls in sections.items():
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw[section]:
                continue
            value, source = raw[section][f.name]
            try:
                kwargs[f.name] = f.metadata["parse"](value)
            except ValueError as exc:
                raise ConfigError(f"{source}: [{section}] {f.name}: invalid value: {exc}") from None
        built[section] = cls(**kwargs)
    origin = {s: {n: src for n, (_, src) in v.items()} for s, v in raw.items()}
    return built, tuple(warnings), tuple(p for p, _ in sources), origin


def _check(settings: Settings, sources: dict[str, dict[str, str]]) -> None:
    """Cross-option rules (each error names where the offending option came from)."""

    def where(section: str, name: str) -> str:
        return f"{sources[section].get(name, '<default>')}: [{section}] {name}"

    ml2 = settings.ml2
    for t in ml2.tenant_network_types:
        if t not in ml2.type_drivers:
            raise ConfigError(f"{where('ml2', 'tenant_network_types')}: invalid value: "
                              f"{t!r} is not in type_drivers ({', '.join(ml2.type_drivers)})")
        if t not in options.SUPPORTED_TYPES:
            raise ConfigError(f"{where('ml2', 'tenant_network_types')}: invalid value: "
                              f"{t!r} networks are not supported by Baryon "
                              f"({', '.join(options.SUPPORTED_TYPES)})")
    if ml2.overlay_ip_version not in (4, 6):
        raise ConfigError(f"{where('ml2', 'overlay_ip_version')}: invalid value: must be 4 or 6")
    for entry in ml2.physical_network_mtus:
        physnet, _, mtu = entry.partition(":")
        if not physnet or not (mtu.isascii() and mtu.isdigit()):  # "²".isdigit(), but int() refuses it
            raise ConfigError(f"{where('ml2', 'physical_network_mtus')}: invalid value: "
                              f"{entry!r} is not <physnet>:<mtu>")
    if settings.DEFAULT.api_workers is not None and settings.DEFAULT.api_workers < 0:
        raise ConfigError(f"{where('DEFAULT', 'api_workers')}: invalid value: must be >= 0")


def unsupported_types(settings: Settings) -> list[str]:
    """Type drivers listed in the files that Baryon does not implement (a warning, not an error)."""
    return [t for t in settings.ml2.type_drivers if t not in options.SUPPORTED_TYPES]
