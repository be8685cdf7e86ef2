"""The Streamlit page's parts: the sidebar, one module per mode, and how errors are shown.

``app.py`` is the entry point (``streamlit run app.py``) and puts them together.
"""
