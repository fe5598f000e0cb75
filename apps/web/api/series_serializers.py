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


class SeriesSerializer(serializers.Serializer):
    counter = CounterInfoSerializer()
    start = serializers.DateTimeField(help_text="Start of the range asked for.")
    end = serializers.DateTimeField(help_text="End of the range asked for.")
    step_s = serializers.IntegerField(
        help_text="Seconds between stamps: the counter's interval, or a multiple of it when a long "
                  "range was thinned to at most 1500 stamps (every k-th real sample, never averaged)."
    )
    stamps = serializers.ListField(
        child=serializers.IntegerField(), help_text="Sample times, seconds since the Unix epoch (UTC)."
    )
    series = NodeSeriesSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
