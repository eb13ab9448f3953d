"""Measure the Aspects pipeline and size its services: collectors -> sizing model -> recommendations -> renderers; config generators."""
