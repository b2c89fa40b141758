"""Bounds on what one GraphQL request may ask, so that a single call cannot exhaust the server.

The schema has no cycles, so depth is bounded by construction; what remains is breadth: a
request body of any size, and aliases repeating an expensive root field (``a1: assetContents
... a999: assetContents``). Batching URL resolution with aliases (50 per request is typical) stays
well inside the limit.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)

MAX_REQUEST_BYTES = 1024 * 1024
MAX_ROOT_FIELDS = 200


class RootFieldLimit(ValidationRule):
    """Refuse operations that select more than MAX_ROOT_FIELDS root fields, aliases included."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        count = self._count(node.selection_set, set())
        if count > MAX_ROOT_FIELDS:
            self.report_error(
                GraphQLError(
                    f"an operation may select at most {MAX_ROOT_FIELDS} root fields (aliases included), "
                    f"this one selects {count}",
                    node,
                )
            )

    def _count(self, selection_set: SelectionSetNode, seen: set[str]) -> int:
        count = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                count += 1
            elif isinstance(selection, InlineFragmentNode):
                count += self._count(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = self.context.get_fragment(selection.name.value)
                if fragment is not None:
                    count += self._count(fragment.selection_set, seen)
        return count
