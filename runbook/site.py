"""Find the MkDocs site a guide belongs to and read what runbook needs from ``mkdocs.yml``."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.errors import ConfigError, GuideError
from runbook.runtime import FOLDER
from runbook.users import owner_name

CONFIG_NAMES = ("mkdocs.yml", "mkdocs.yaml")
SNIPPETS = "_*.md"


@dataclass(frozen=True)
class Site:
    """What runbook takes from a site's configuration."""

    root: Path
    """The folder holding ``mkdocs.yml`` (or the lone guide's folder)."""
    config_file: Path | None
    """``mkdocs.yml``, or None for a lone markdown file."""
    docs_dir: Path
    """The site's docs folder."""
    include_dir: Path
    """Where ``{% include %}`` names resolve."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Variables from ``extra:`` (and the whole config as ``config``)."""
    inputs: Mapping[str, str] = field(default_factory=dict)
    """Default values for ``<placeholders>`` from the plugin's ``inputs:``."""
    hosts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Named hosts from the plugin's ``hosts:``."""
    plugin: str = ""
    """Which plugin configured the include root: ``runbook``, ``macros`` or none."""
    markdown_extensions: tuple[tuple[str, Mapping[str, Any]], ...] | None = None
    """``markdown_extensions`` as (name, options) pairs; None for a lone guide."""
    nav: tuple[Any, ...] = ()
    """The site's ``nav:`` as written (pages relative to ``docs_dir``)."""
    snippets: str = SNIPPETS
    """File name pattern of include snippets in the docs folder (never pages)."""
    ssh_config: Path | None = None
    """An OpenSSH client configuration every ssh that runbook starts reads (``-F``)."""

    def is_snippet(self, path: Path) -> bool:
        """Tell whether ``path`` is an include snippet rather than a page of the site."""
        if fnmatch.fnmatch(path.name, self.snippets):
            return True
        if self.include_dir.resolve() == self.docs_dir.resolve():
            return False
        return self.include_dir.resolve() in path.resolve().parents

    @property
    def runtime_dir(self) -> Path:
        """The one git-ignored folder for journals, transcripts and locks.

        Beside the site when its folder is the user's (or root's) and others cannot write
        it; else in the user's own state folder, never where another user could plant it.
        """
        if not distrust(self.root):
            return self.root / FOLDER
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return Path(state) / "runbook" / f"{self.root.name or 'root'}-{digest}"


def distrust(path: Path) -> str:
    """Say why ``path`` may hold what another user wrote; empty when it is safe to use.

    Safe: owned by the invoking user or root, and writable by no one else. A folder others
    can write (such as /tmp) can hold a file anyone planted, whoever it names as owner.
    """
    try:
        info = os.stat(path)
    except OSError:
        return ""
    if info.st_uid not in (0, os.geteuid()):
        return f"belongs to {owner_name(info.st_uid)}, not to you or root"
    if info.st_mode & 0o022:
        return "can be written by other users"
    return ""


def find_config(start: Path) -> Path | None:
    """Return the nearest ``mkdocs.yml`` at or above ``start``'s folder.

    The search climbs only through folders no other user can write: above one that others
    can write (``/tmp``), a config may be anyone's, so the guide is a lone guide there. A
    config found that another user owns or can change is refused, saying why.
    """
    folder = start if start.is_dir() else start.parent
    for candidate in [folder, *folder.parents]:
        if distrust(candidate):
            return None
        for name in CONFIG_NAMES:
            path = candidate / name
            if path.is_file():
                why = distrust(path)
                if why:
                    raise ConfigError(
                        f"{why}: runbook does not take its configuration from a file "
                        "another user can change",
                        path=path,
                        hint=f"make it yours and private to you (chown and chmod go-w {path}),"
                        " or move the guide out of this folder",
                    )
                return path
    return None


def _loader() -> type[Any]:
    """Return mkdocs' YAML loader made safe: unknown Python tags become plain strings."""
    import yaml
    from mkdocs.utils.yaml import get_yaml_loader

    loader: type[Any] = get_yaml_loader(loader=yaml.SafeLoader)

    def python_tag(ld: Any, suffix: str, node: Any) -> str:
        # Material's emoji options name Python callables; importing them is not our job.
        return f"!!python/{suffix}"

    def relative_tag(ld: Any, node: Any) -> str:
        return str(ld.construct_scalar(node))

    loader.add_multi_constructor("tag:yaml.org,2002:python/", python_tag)
    loader.add_constructor("!relative", relative_tag)
    return loader


def read_config(path: Path) -> dict[str, Any]:
    """Read ``mkdocs.yml`` with mkdocs' loader (``!ENV``, ``INHERIT``), never importing code."""
    from mkdocs.exceptions import ConfigurationError
    from mkdocs.utils.yaml import yaml_load

    try:
        with path.open("rb") as fd:
            data = yaml_load(fd, loader=_loader())
    except ConfigurationError as exc:
        raise ConfigError(str(exc), path=path, hint="fix the YAML syntax") from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise ConfigError("is not a YAML mapping", path=path, line=1)
    return data


def front_matter_data(raw: str, path: Path) -> dict[str, Any]:
    """Parse a page's front matter (the YAML between the ``---`` lines) as MkDocs does."""
    import yaml

    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise GuideError(
            f"front matter is not valid YAML: {getattr(exc, 'problem', exc)}",
            path=path,
            line=line,
            hint="fix the YAML between the --- lines",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GuideError("front matter must be a YAML mapping", path=path, line=2)
    return data


@dataclass(frozen=True)
class PluginOption:
    """One option under ``plugins: - runbook:``."""

    kind: type
    """The YAML type it takes."""
    default: Any
    """Its value when absent."""
    doc: str
    """What it sets, for people."""


PLUGIN_OPTIONS: Mapping[str, PluginOption] = {
    "include_dir": PluginOption(
        str, "", "Where {% include %} names resolve (default: the docs folder)."
    ),
    "inputs": PluginOption(dict, {}, "Default values for <placeholders>."),
    "hosts": PluginOption(dict, {}, 'Named hosts for host="…" blocks.'),
    "snippets": PluginOption(
        str, SNIPPETS, "File name pattern of snippets in the docs folder, never pages."
    ),
    "ssh_config": PluginOption(
        str,
        "",
        "An ssh client configuration (relative to mkdocs.yml) for every ssh runbook starts.",
    ),
}
"""The plugin's options: ``runbook`` reads them from ``mkdocs.yml`` and the MkDocs plugin
builds its configuration schema from them."""


def plugin_options(config: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """Return the options of plugin ``name`` (``{}`` when listed bare), None when absent."""
    plugins = config.get("plugins") or []
    if isinstance(plugins, Mapping):
        plugins = [{k: v} for k, v in plugins.items()]
    for entry in plugins:
        if entry == name:
            return {}
        if isinstance(entry, Mapping) and name in entry:
            options = entry[name]
            return options if isinstance(options, Mapping) else {}
    return None


def plugin_settings(options: Mapping[str, Any], config_file: Path | None) -> dict[str, Any]:
    """Return every option of the runbook plugin, defaults filled, refusing a wrong type."""
    settings: dict[str, Any] = {}
    for name, option in PLUGIN_OPTIONS.items():
        value = options.get(name)
        if value is None:
            value = type(option.default)(option.default)
        if not isinstance(value, option.kind):
            what = "a mapping" if option.kind is dict else "a string"
            raise ConfigError(f"runbook plugin '{name}:' must be {what}", path=config_file)
        settings[name] = value
    return settings


def site_from_config(config_file: Path, config: Mapping[str, Any]) -> Site:
    """Build a Site from an already read configuration mapping."""
    ours = plugin_options(config, "runbook")
    macros = plugin_options(config, "macros")
    settings = plugin_settings(ours or {}, config_file)
    plugin = "runbook" if ours is not None else "macros" if macros is not None else ""
    if plugin == "macros" and macros is not None:
        settings["include_dir"] = str(macros.get("include_dir") or "")
    extra = config.get("extra") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError("'extra:' must be a mapping", path=config_file)
    nav = config.get("nav")
    return site_with(
        config_file,
        config_file.parent / str(config.get("docs_dir") or "docs"),
        settings,
        plugin=plugin,
        extra=extra,
        markdown_extensions=markdown_extensions(config, config_file),
        nav=tuple(nav) if isinstance(nav, list) else (),
    )


def site_with(
    config_file: Path,
    docs_dir: Path,
    settings: Mapping[str, Any],
    *,
    plugin: str,
    extra: Mapping[str, Any],
    markdown_extensions: tuple[tuple[str, Mapping[str, Any]], ...] | None = None,
    nav: tuple[Any, ...] = (),
) -> Site:
    """Build the Site of ``config_file`` from the plugin's ``settings`` (see plugin_settings)."""
    root = config_file.parent
    include = settings["include_dir"]
    include_dir = root / include if include else docs_dir
    why = distrust(include_dir)
    if why:
        raise ConfigError(
            f"the include folder {include_dir} {why}: its snippets could be anyone's",
            path=config_file,
            hint=f"make it yours and private to you (chown and chmod go-w {include_dir})",
        )
    hosts = settings["hosts"]
    ssh_config = root / settings["ssh_config"] if settings["ssh_config"] else None
    why = distrust(ssh_config) if ssh_config is not None else ""
    if why:
        # Its ProxyCommand and LocalCommand lines run here.
        raise ConfigError(
            f"the ssh configuration {ssh_config} {why}: it could run anyone's commands",
            path=config_file,
            hint=f"make it yours and private to you (chown and chmod go-w {ssh_config})",
        )
    return Site(
        root=root,
        config_file=config_file,
        markdown_extensions=markdown_extensions,
        nav=nav,
        docs_dir=docs_dir,
        include_dir=include_dir,
        extra=dict(extra),
        inputs={str(k): str(v) for k, v in settings["inputs"].items()},
        hosts={str(k): dict(v) if isinstance(v, Mapping) else {"ssh": v} for k, v in hosts.items()},
        plugin=plugin,
        snippets=settings["snippets"],
        ssh_config=ssh_config,
    )


def markdown_extensions(
    config: Mapping[str, Any], config_file: Path
) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """Read ``markdown_extensions`` (a list of names or one-key mappings, or a mapping)."""
    value = config.get("markdown_extensions") or []
    entries = [{k: v} for k, v in value.items()] if isinstance(value, Mapping) else value
    if not isinstance(entries, list):
        raise ConfigError("'markdown_extensions:' must be a list", path=config_file)
    found: list[tuple[str, Mapping[str, Any]]] = []
    for entry in entries:
        if isinstance(entry, str):
            found.append((entry, {}))
        elif isinstance(entry, Mapping) and len(entry) == 1:
            name, options = next(iter(entry.items()))
            found.append((str(name), dict(options) if isinstance(options, Mapping) else {}))
        else:
            raise ConfigError(
                f"'markdown_extensions:' entry {entry!r} is not a name or a one-key mapping",
                path=config_file,
            )
    return tuple(found)


def load_site(guide: Path) -> Site:
    """Find and read the site of ``guide``; a lone file is its own site."""
    config_file = find_config(guide.resolve())
    if config_file is None:
        folder = guide.resolve().parent
        return Site(root=folder, config_file=None, docs_dir=folder, include_dir=folder)
    return site_from_config(config_file, read_config(config_file))
