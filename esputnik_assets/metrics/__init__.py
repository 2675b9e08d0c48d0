"""The metric layer: the eight use cases as daily metric tables computed inside the warehouse (see README)."""
