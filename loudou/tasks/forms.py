"""The task form: the quick-add row of the list page and the record panels, and the
task's edit page. A due date without a time is an all-day task; the reminder is chosen
as "how long before"."""

from datetime import datetime, time

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loudou.activities.choices import Kind

from .services import remind_before

REMIND_CHOICES = [
    ("", _("No reminder")),
    ("0", _("At the due time")),
    ("15", _("15 minutes before")),
    ("60", _("1 hour before")),
    ("1440", _("1 day before")),
]
KEEP = "keep"


class TaskForm(forms.Form):
    """Title, type, due day and time (empty time: all day), reminder, assignees, notes.
    ``people`` are the users the actor may assign (services.assignable_people)."""

    title = forms.CharField(label=_("Title"), max_length=200)
    kind = forms.ChoiceField(label=_("Type"), choices=Kind.choices, initial=Kind.CALL)
    due_date = forms.DateField(
        label=_("Due date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    due_time = forms.TimeField(
        label=_("Time"),
        required=False,
        help_text=_("Empty: all day."),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    remind = forms.ChoiceField(label=_("Reminder"), choices=REMIND_CHOICES, required=False)
    assignees = forms.MultipleChoiceField(label=_("Assignees"), required=False)
    notes = forms.CharField(
        label=_("Notes"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, people=(), task=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.people = list(people)
        self.task = task
        choices = [(str(p.pk), str(p)) for p in self.people]
        if task is not None:
            # People already assigned stay choosable even if the actor could not add them.
            known = {c[0] for c in choices}
            choices += [(str(p.pk), str(p)) for p in task.assignees.all() if str(p.pk) not in known]
            if task.remind_at and not self._matches_offset(task):
                local = timezone.localtime(task.remind_at).strftime("%Y-%m-%d %H:%M")
                self.fields["remind"].choices = [
                    *REMIND_CHOICES,
                    (KEEP, _("Keep: %(when)s") % {"when": local}),
                ]
        self.fields["assignees"].choices = choices
        for name in ("title", "kind", "due_date", "due_time", "remind", "notes"):
            widget = self.fields[name].widget
            css = "form-select" if isinstance(widget, forms.Select) else "form-control"
            widget.attrs.setdefault("class", css)

    @property
    def due_date_value(self) -> str:
        """The due date as the date input wants it (initial date or posted text)."""
        value = self["due_date"].value()
        return value.strftime("%Y-%m-%d") if hasattr(value, "strftime") else (value or "")

    @property
    def due_time_value(self) -> str:
        value = self["due_time"].value()
        return value.strftime("%H:%M") if hasattr(value, "strftime") else (value or "")

    @property
    def assignee_values(self) -> list[str]:
        return [str(v) for v in (self["assignees"].value() or [])]

    @staticmethod
    def initial_for(task) -> dict:
        """The edit form's initial values for ``task``."""
        local = timezone.localtime(task.due_at)
        remind = ""
        if task.remind_at:
            remind = TaskForm._offset(task) or KEEP
        return {
            "title": task.title, "kind": task.kind, "due_date": local.date(),
            "due_time": None if task.all_day else local.time().replace(second=0),
            "remind": remind, "notes": task.notes, "version": task.version,
            "assignees": [str(pk) for pk in task.assignees.values_list("pk", flat=True)],
        }  # fmt: skip

    @staticmethod
    def _offset(task) -> str:
        for value, _label in REMIND_CHOICES[1:]:
            if remind_before(task.due_at, task.all_day, int(value)) == task.remind_at:
                return value
        return ""

    def _matches_offset(self, task) -> bool:
        return bool(self._offset(task))

    def service_data(self) -> dict:
        """The keyword arguments of services.create_task / update_task."""
        data = self.cleaned_data
        when = data["due_time"]
        all_day = when is None
        due_at = timezone.make_aware(datetime.combine(data["due_date"], when or time(23, 59, 59)))
        remind = data.get("remind") or ""
        result = {
            "title": data["title"], "kind": data["kind"], "notes": data["notes"],
            "due_at": due_at, "all_day": all_day,
            "assignees": [int(pk) for pk in data["assignees"]],
        }  # fmt: skip
        if remind == KEEP and self.task is not None:
            result["remind_at"] = self.task.remind_at
        else:
            result["remind_at"] = remind_before(due_at, all_day, int(remind) if remind else None)
        return result
