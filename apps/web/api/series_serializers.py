"""Shapes of the series answer (also what the OpenAPI description shows)."""
from __future__ import annotations

from rest_framework import serializers

from apps.monitoring.choices import Comparison


class CounterInfoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    cluster = serializers.CharField()
    jvm = serializers.CharField(allow_null=True)
    unit = serializers.CharField(allow_blank=True)
    threshold = serializers.FloatField()
    comparison = serializers.ChoiceField(choices=Comparison.values)
    interval_s = serializers.IntegerField()


class NodeSeriesSerializer(serializers.Serializer):
    node_id = serializers.IntegerField()
    node = serializers.CharField()
    values = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        help_text="One value per stamp; null where no sample exists.",
    )


class BandSerializer(serializers.Serializer):
    nodes = serializers.IntegerField(help_text="Nodes the band is over.")
    min = serializers.ListField(child=serializers.FloatField(allow_null=True), help_text="Per stamp.")
    p50 = serializers.ListField(child=serializers.FloatField(allow_null=True),
                                help_text="Per stamp: the median (nearest rank, a value some node has).")
    max = serializers.ListField(child=serializers.FloatField(allow_null=True), help_text="Per stamp.")
    count = serializers.ListField(child=serializers.IntegerField(), help_text="Nodes with a sample, per stamp.")


class SeriesSerializer(serializers.Serializer):
    counter = CounterInfoSerializer()
    start = serializers.DateTimeField(help_text="Start of the range asked for.")
    end = serializers.DateTimeField(help_text="End of the range asked for.")
    step_s = serializers.IntegerField(
        help_text="Seconds between stamps: the counter's interval, or a multiple of it when a long "
                  "range was thinned to at most 1500 stamps, or on a cluster of over 100 nodes to at most 150,000 "
                  "samples read in all (every k-th real sample, never averaged)."
    )
    stamps = serializers.ListField(
        child=serializers.IntegerField(), help_text="Sample times, seconds since the Unix epoch (UTC)."
    )
    series = NodeSeriesSerializer(many=True, help_text="Every node's series; with aggregate=band the worst "
                                                       "nodes' only, worst first.")
    band = BandSerializer(allow_null=True, help_text="With aggregate=band: the spread of every node; else null.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
