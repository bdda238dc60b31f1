"""Trees stored with a materialised path, so that "everything under X" is one indexed
``LIKE 'path%'`` on SQLite and PostgreSQL alike."""

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Concat, Substr
from django.utils.translation import gettext_lazy as _

PATH_STEP = 8  # digits per level: "00000012/00000034/"


class TreeNode(models.Model):
    """A node of a tree. ``path`` is maintained here; it is derived, never typed in."""

    name = models.CharField(_("name"), max_length=100)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    path = models.CharField(max_length=255, editable=False, db_index=True, default="")

    class Meta:
        abstract = True
        ordering = ["path"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # The path is an index over the parent links, kept in step with them here so
        # that admin edits, services and fixtures can never leave it stale.
        with transaction.atomic():
            if self.pk is None:
                super().save(*args, **kwargs)  # a new node needs its id for its path
                args, kwargs = (), {}
            old_path = self.path
            self._refuse_cycle(old_path)
            self.path = self._compute_path()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "path"}
            super().save(*args, **kwargs)
            if old_path and old_path != self.path:
                self._rebase_descendants(old_path, self.path)

    def _refuse_cycle(self, old_path):
        # The same rule as clean(), enforced on every save: code that skips validation
        # (a service, a script, the shell) must not be able to loop the tree.
        if not self.parent_id:
            return
        parent_path = type(self).objects.filter(pk=self.parent_id).values_list("path", flat=True)
        parent_path = parent_path.first() or ""
        if self.parent_id == self.pk or (old_path and parent_path.startswith(old_path)):
            raise ValidationError(
                {"parent": _("A node cannot be placed under itself or its own descendant.")}
            )

    def _compute_path(self):
        prefix = self.parent.path if self.parent_id else ""
        return f"{prefix}{self.pk:0{PATH_STEP}d}/"

    def _rebase_descendants(self, old_path, new_path):
        type(self).objects.filter(path__startswith=old_path).exclude(pk=self.pk).update(
            path=Concat(models.Value(new_path), Substr("path", len(old_path) + 1))
        )

    def clean(self):
        super().clean()
        if self.parent_id and self.pk:
            if self.parent_id == self.pk or (self.path and self.parent.path.startswith(self.path)):
                raise ValidationError(
                    {"parent": _("A node cannot be placed under itself or its own descendant.")}
                )

    @property
    def depth(self):
        return max(self.path.count("/") - 1, 0)

    def subtree(self):
        """This node and every node below it."""
        return type(self).objects.filter(path__startswith=self.path)

    def ancestors(self):
        """The nodes above this one, root first."""
        ids = [int(part) for part in self.path.split("/") if part][:-1]
        return type(self).objects.filter(pk__in=ids).order_by("path")
