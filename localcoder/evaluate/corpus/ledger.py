"""A small double-entry ledger: accounts, postings and a trial balance."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal


class UnbalancedEntry(ValueError):
    """The postings of one entry do not sum to zero."""


@dataclass(frozen=True)
class Posting:
    account: str
    amount: Decimal


@dataclass
class Entry:
    date: str
    memo: str
    postings: list[Posting] = field(default_factory=list)

    def add(self, account: str, amount: str | Decimal) -> Entry:
        self.postings.append(Posting(account, Decimal(amount)))
        return self

    def check(self) -> None:
        total = sum((p.amount for p in self.postings), Decimal(0))
        if total != 0:
            raise UnbalancedEntry(f"{self.date} {self.memo!r}: off by {total}")


class Ledger:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def record(self, entry: Entry) -> None:
        entry.check()
        self.entries.append(entry)

    def balances(self, until: str | None = None) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for entry in self.entries:
            if until is not None and entry.date > until:
                continue
            for posting in entry.postings:
                totals[posting.account] += posting.amount
        return dict(sorted(totals.items()))

    def trial_balance(self) -> str:
        rows = [f"{name:<24}{amount:>12}" for name, amount in self.balances().items()]
        width = max((len(row) for row in rows), default=36)
        return "\n".join([*rows, "-" * width, f"{'total':<24}{sum(self.balances().values()):>12}"])

    def accounts_under(self, prefix: str) -> list[str]:
        """Accounts named prefix or prefix:anything, as in assets:bank:checking."""
        return [name for name in self.balances() if name == prefix or name.startswith(prefix + ":")]


def monthly_totals(ledger: Ledger, account: str) -> dict[str, Decimal]:
    months: dict[str, Decimal] = defaultdict(Decimal)
    for entry in ledger.entries:
        for posting in entry.postings:
            if posting.account == account:
                months[entry.date[:7]] += posting.amount
    return dict(sorted(months.items()))


if __name__ == "__main__":
    book = Ledger()
    book.record(Entry("2026-01-03", "salary").add("assets:bank", "2500.00").add("income:salary", "-2500.00"))
    book.record(Entry("2026-01-09", "rent").add("expenses:rent", "900.00").add("assets:bank", "-900.00"))
    book.record(Entry("2026-02-02", "groceries").add("expenses:food", "84.20").add("assets:bank", "-84.20"))
    print(book.trial_balance())
    print(monthly_totals(book, "assets:bank"))
