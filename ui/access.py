"""Who may change the index from the page: anyone on this machine; elsewhere, whoever has the token.

The shipped ``.streamlit/config.toml`` binds the page to localhost. A page reachable from other
machines (``server.address`` not loopback, or ``RAG_PAGE_EXPOSED``) asks for ``RAG_PAGE_ADMIN_TOKEN``
before the Library's write actions (upload, index a folder, delete); without a token set they
are off. Reading, searching and asking stay open, as on the API with a read key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import streamlit as st

from rag.settings import Settings


def _loopback(address: str | None) -> bool:
    if not address:  # Streamlit's default: every interface
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[] ")).is_loopback
    except ValueError:
        return False


def exposed(settings: Settings) -> bool:
    """Whether other machines can reach this page."""
    return settings.page_exposed or not _loopback(st.get_option("server.address"))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_token(settings: Settings) -> None:
    """The token field's callback: remember that this session proved it knows the token (the
    field itself is not drawn once it has, and Streamlit forgets undrawn widgets' values)."""
    given = str(st.session_state.get("admin_token", ""))
    token = settings.page_admin_token
    right = bool(token) and hmac.compare_digest(given.encode(), token.encode())
    st.session_state["admin_ok"] = _digest(token) if right else None
    st.session_state["admin_token"] = ""  # the token is not kept in the session
    st.session_state["admin_refused"] = bool(given) and not right


def may_write(settings: Settings) -> bool:
    """True when this session may change the index (checked again by every write action)."""
    if not exposed(settings):
        return True
    token = settings.page_admin_token
    proved = st.session_state.get("admin_ok")
    return bool(token) and isinstance(proved, str) and hmac.compare_digest(proved, _digest(token))


def admin_gate(settings: Settings) -> bool:
    """Draw the token prompt when needed; True when the Library's write actions may be shown."""
    if may_write(settings):
        return True
    if not settings.page_admin_token:
        st.info(
            "Adding and deleting articles is off: this page is reachable from other machines and "
            "no admin token is set (RAG_PAGE_ADMIN_TOKEN). Use `rag ingest` on the server, or set "
            "a token and restart the page."
        )
        return False
    st.text_input(
        "Admin token",
        type="password",
        key="admin_token",
        on_change=_check_token,
        args=(settings,),
        help="This page is reachable from other machines: adding or deleting articles needs the "
        "token set in RAG_PAGE_ADMIN_TOKEN.",
    )
    if st.session_state.get("admin_refused"):
        st.error("That is not the admin token.")
    return False
