# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate policy manifests against the schemas the API server applies.

* ``networking.k8s.io/v1`` NetworkPolicy: the Kubernetes OpenAPI schema of the chosen
  Kubernetes version, through ``kubernetes-validate`` (offline, strict: unknown fields are
  errors, as they would be silently dropped by the API server);
* ``cilium.io/v2`` CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy: the CRDs'
  ``openAPIV3Schema`` shipped in ``netpol_crd_schemas`` (``jsonschema``).

Nothing here imports ``ansible``.  ``kubernetes_validate`` and ``jsonschema`` are controller
requirements (requirements.txt); they are imported when a validator is created, and their
absence raises :class:`MissingLibrary`, which modules turn into ``missing_required_lib``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError, InvalidInput
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_crd_schemas import SCHEMAS as CRD_SCHEMAS

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?$")

# Python's re has no Unicode property classes.  The CRD uses \PC (no character of the
# "other" categories) for spec.log.value; it is checked as "no control characters".
_PATTERN_REWRITES = ((r"\PC", r"[^\x00-\x1f\x7f-\x9f]"),)


class MissingLibrary(CollectionError):
    """A Python library the validation needs is not installed on the controller."""

    def __init__(self, library, reason):
        self.library = library
        self.reason = reason
        super(MissingLibrary, self).__init__("%s is required: %s" % (library, reason))


def _python_pattern(pattern):
    for source, replacement in _PATTERN_REWRITES:
        pattern = pattern.replace(source, replacement)
    return pattern


def field_path(parts):
    """``['spec', 'egress', 0, 'ports']`` -> ``spec.egress[0].ports``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += "[%d]" % part
        else:
            text += ("." if text else "") + str(part)
    return text or "(manifest)"


def describe(manifest):
    """``NetworkPolicy production/default-deny`` (clusterwide kinds without a namespace)."""
    if not isinstance(manifest, dict):
        return "manifest"
    metadata = manifest.get("metadata") if isinstance(manifest.get("metadata"), dict) else {}
    name = metadata.get("name", "(no name)")
    if metadata.get("namespace"):
        name = "%s/%s" % (metadata["namespace"], name)
    return "%s %s" % (manifest.get("kind", "(no kind)"), name)


class ManifestValidator:
    """Validates NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy manifests.

    :param kubernetes_version: ``major.minor`` (``1.31``) of the cluster; NetworkPolicy is
        checked against the newest schema kubernetes-validate has that is not newer.
    :raises InvalidInput: when the version is malformed or not covered offline.
    :raises MissingLibrary: when kubernetes-validate or jsonschema is not installed.
    """

    def __init__(self, kubernetes_version):
        try:
            import jsonschema
        except ImportError as exc:
            raise MissingLibrary("jsonschema", "it validates Cilium policies against the CRD schema (%s)" % exc)
        try:
            import kubernetes_validate
            from kubernetes_validate import utils as kubernetes_validate_utils
        except ImportError as exc:
            raise MissingLibrary(
                "kubernetes-validate", "it validates NetworkPolicy against the Kubernetes schema (%s)" % exc
            )
        self._jsonschema = jsonschema
        self._kubernetes_validate = kubernetes_validate
        text = str(kubernetes_version)
        match = _VERSION.match(text)
        if not match:
            raise InvalidInput(
                "kubernetes_version", kubernetes_version, "must be a Kubernetes version such as 1.31", where="schema"
            )
        wanted = (int(match.group(1)), int(match.group(2)))
        offline = sorted(
            {tuple(int(part) for part in item.split(".")[:2]) for item in kubernetes_validate_utils.all_versions()}
        )
        if wanted < offline[0] or wanted > offline[-1]:
            raise InvalidInput(
                "kubernetes_version",
                kubernetes_version,
                "is not covered by the installed kubernetes-validate (schemas %s to %s)"
                % (".".join(map(str, offline[0])), ".".join(map(str, offline[-1]))),
                where="schema",
            )
        self.kubernetes_version = "%d.%d" % wanted

        def pattern(validator, value, instance, schema):
            if validator.is_type(instance, "string") and not re.search(_python_pattern(value), instance):
                yield jsonschema.ValidationError("%r does not match %r" % (instance, value))

        self._crd_validator_class = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": pattern})
        self._crd_validators = {}

    def validate(self, manifest):
        """Raise ``InvalidInput`` naming the policy and the field when ``manifest`` is refused."""
        where = describe(manifest)
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        api_version = manifest.get("apiVersion") if isinstance(manifest, dict) else None
        if (api_version, kind) == ("networking.k8s.io/v1", "NetworkPolicy"):
            self._validate_kubernetes(manifest, where)
        elif api_version == "cilium.io/v2" and kind in CRD_SCHEMAS:
            self._validate_crd(manifest, kind, where)
        else:
            raise InvalidInput(
                "kind",
                "%s %s" % (api_version, kind),
                "is not one of: networking.k8s.io/v1 NetworkPolicy, cilium.io/v2 CiliumNetworkPolicy, "
                "cilium.io/v2 CiliumClusterwideNetworkPolicy",
                where=where,
            )

    def _validate_kubernetes(self, manifest, where):
        try:
            self._kubernetes_validate.validate(manifest, self.kubernetes_version, strict=True)
        except self._kubernetes_validate.ValidationError as exc:
            raise InvalidInput(
                field_path(list(exc.absolute_path)),
                exc.instance,
                "is refused by the Kubernetes %s NetworkPolicy schema: %s" % (self.kubernetes_version, exc.message),
                where=where,
            )

    def _validate_crd(self, manifest, kind, where):
        validator = self._crd_validators.get(kind)
        if validator is None:
            validator = self._crd_validator_class(CRD_SCHEMAS[kind])
            self._crd_validators[kind] = validator
        error = self._jsonschema.exceptions.best_match(validator.iter_errors(manifest))
        if error is not None:
            raise InvalidInput(
                field_path(list(error.absolute_path)),
                error.instance,
                "is refused by the %s CRD schema (cilium.io/v2): %s" % (kind, error.message),
                where=where,
            )
