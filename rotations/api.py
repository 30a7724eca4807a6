"""Roster REST API: parse, check the role matrix (portal.permissions), call a service or selector."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsing import small_uint
from portal import permissions as perms
from rotations import selectors
from rotations.handover import handover_note_add
from rotations.models import (
    Exclusion,
    HandoverNote,
    Membership,
    Override,
    Rotation,
    RotationEra,
    RotationParticipant,
    SwapRequest,
    Team,
)
from rotations.serializers import (
    DefinitionChangeSerializer,
    ExclusionFilter,
    ExclusionSerializer,
    HandoverNoteSerializer,
    HandoverNoteWriteSerializer,
    IcalLinkSerializer,
    MemberSerializer,
    MembershipWriteSerializer,
    OncallQuerySerializer,
    OncallResponseSerializer,
    OverrideFilter,
    OverrideSerializer,
    RotationCreateSerializer,
    RotationFilter,
    RotationSerializer,
    RotationUpdateSerializer,
    ShiftSerializer,
    ShiftsQuerySerializer,
    SwapRequestFilter,
    SwapRequestSerializer,
    TeamSerializer,
)
from rotations.services import exclusions, memberships, overrides, swaps
from rotations.services import rotations as services_rotations
from rotations.services import teams as services_teams

User = get_user_model()


# --------------------------------------------------------------------------- helpers


def _team_lookup(value: str, user) -> Team:
    pk = small_uint(str(value))
    lookup = Q(pk=pk) if pk is not None else Q(slug=value)
    team = Team.objects.filter(lookup).first()
    if team is None or not perms.can_view_team(user, team):
        raise NotFound("No such team.")
    return team


def _service_kwargs(data: dict) -> dict:
    out = dict(data)
    if "restrictions" in out:
        out["restrictions"] = [dict(w) for w in out["restrictions"]]
    return out


# --------------------------------------------------------------------------- viewsets


def _ical_link(request, name: str, token: str) -> str:
    return request.build_absolute_uri(reverse(name, kwargs={"token": token}))


class TeamViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Teams you can see, with members and their roles. Staff create; managers update their teams."""

    serializer_class = TeamSerializer
    queryset = Team.objects.none()  # for schema generation; get_queryset() scopes to the viewer
    ordering_fields = ["name", "slug"]
    ordering = ["name"]
    filterset_fields = ["slug"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Team.objects.none()
        qs = Team.objects.prefetch_related(
            Prefetch("memberships", queryset=Membership.objects.select_related("user").order_by("role", "user_id"))
        )
        if not self.request.user.is_staff:
            qs = qs.filter(memberships__user=self.request.user)
        return qs.order_by("name")

    def perform_create(self, serializer):
        if not perms.is_staff(self.request.user):
            raise PermissionDenied("Only staff create teams.")
        serializer.instance = services_teams.team_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        team = serializer.instance
        if not perms.can_manage_team(self.request.user, team):
            raise PermissionDenied("Only the team's managers and staff change a team.")
        serializer.instance = services_teams.team_update(
            team=team, actor=self.request.user, **serializer.validated_data
        )

    @extend_schema(request=MembershipWriteSerializer, responses=MemberSerializer)
    @action(detail=True, methods=["post"], url_path="members")
    def members(self, request, pk=None):
        """Add a member or change their role (managers, staff). Refused (400) like in the portal: a
        deactivated user, demoting the team's last manager, making a viewer of someone it pages."""
        team = self.get_object()
        if not perms.can_manage_team(request.user, team):
            raise PermissionDenied("Only the team's managers and staff manage members.")
        ser = MembershipWriteSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        user, role = ser.validated_data["user"], ser.validated_data["role"]
        membership = Membership.objects.filter(team=team, user=user).first()
        if membership is None:
            membership = memberships.membership_create(team=team, user=user, role=role, actor=request.user)
        else:
            membership = memberships.membership_update(
                membership=membership, role=role, actor=request.user, now=timezone.now()
            )
        return Response(MemberSerializer(membership).data, status=status.HTTP_200_OK)

    @extend_schema(methods=["GET"], request=None, responses=HandoverNoteSerializer(many=True))
    @extend_schema(methods=["POST"], request=HandoverNoteWriteSerializer, responses={201: HandoverNoteSerializer})
    @action(detail=True, methods=["get", "post"], url_path="handover-notes")
    def handover_notes(self, request, pk=None):
        """Your handover notes for this team (GET, newest first), or a new one for your next handover
        (POST): the team's engineers and managers, and staff."""
        team = self.get_object()
        if not perms.can_work_incidents(request.user, team):
            raise PermissionDenied("Only the team's engineers and managers write handover notes.")
        if request.method == "GET":
            notes = HandoverNote.objects.filter(team=team, author=request.user).order_by("-created_at", "-pk")
            page = self.paginate_queryset(notes)
            return self.get_paginated_response(HandoverNoteSerializer(page, many=True).data)
        ser = HandoverNoteWriteSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        note = handover_note_add(team=team, author=request.user, now=timezone.now(), **ser.validated_data)
        return Response(HandoverNoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=IcalLinkSerializer)
    @action(detail=True, methods=["post"], url_path="ical-token/rotate")
    def ical_token_rotate(self, request, pk=None):
        """A new team feed URL; the old one stops working at once (managers, staff)."""
        team = self.get_object()
        if not perms.can_manage_team(request.user, team):
            raise PermissionDenied("Only the team's managers and staff change the team's calendar link.")
        token = services_teams.team_ical_token_rotate(team=team, actor=request.user)
        return Response(IcalLinkSerializer({"url": _ical_link(request, "ical:team", token)}).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def member_remove(self, request, pk=None, user_id=None):
        """Take someone out of the team (managers, staff); refused (400) for the last manager of a team
        with other members, and for someone a rotation, override or escalation step still needs."""
        team = self.get_object()
        if not perms.can_manage_team(request.user, team):
            raise PermissionDenied("Only the team's managers and staff manage members.")
        membership = Membership.objects.filter(team=team, user_id=user_id).first()
        if membership is None:
            raise NotFound("Not a member.")
        memberships.membership_delete(membership=membership, actor=request.user, now=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotationViewSet(viewsets.ModelViewSet):
    """Rotations with their current era. Definition changes create a new era (POST …/definition/)."""

    filterset_class = RotationFilter
    queryset = Rotation.objects.none()
    ordering_fields = ["name", "team"]
    ordering = ["team", "name"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        qs = Rotation.objects.select_related("team").prefetch_related(
            Prefetch(
                "eras",
                queryset=RotationEra.objects.order_by("effective_from").prefetch_related(
                    Prefetch("participant_links", queryset=RotationParticipant.objects.select_related("user"))
                ),
            )
        )
        if not self.request.user.is_staff:
            qs = qs.filter(team_id__in=perms.user_team_ids(user=self.request.user))
        return qs.order_by("team_id", "name")

    def get_serializer_class(self):
        if self.action == "create":
            return RotationCreateSerializer
        if self.action == "partial_update":
            return RotationUpdateSerializer
        if self.action == "definition":
            return DefinitionChangeSerializer
        return RotationSerializer

    def _out(self, rotation: Rotation, code: int = status.HTTP_200_OK) -> Response:
        rotation = self.get_queryset().get(pk=rotation.pk)  # fresh, with eras prefetched
        return Response(RotationSerializer(rotation, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=RotationCreateSerializer, responses={201: RotationSerializer})
    def create(self, request, *args, **kwargs):
        ser = RotationCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        team = ser.validated_data["team"]
        if not perms.can_manage_team(request.user, team):
            raise PermissionDenied("Only the team's managers and staff create rotations.")
        rotation = services_rotations.rotation_create(actor=request.user, **_service_kwargs(ser.validated_data))
        return self._out(rotation, status.HTTP_201_CREATED)

    @extend_schema(request=RotationUpdateSerializer, responses=RotationSerializer)
    def partial_update(self, request, *args, **kwargs):
        rotation = self.get_object()
        if not perms.can_manage_team(request.user, rotation.team_id):
            raise PermissionDenied("Only the team's managers and staff change rotations.")
        ser = RotationUpdateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        services_rotations.rotation_update(rotation=rotation, actor=request.user, **ser.validated_data)
        return self._out(rotation)

    def destroy(self, request, *args, **kwargs):
        rotation = self.get_object()
        if not perms.can_manage_team(request.user, rotation.team_id):
            raise PermissionDenied("Only the team's managers and staff delete rotations.")
        services_rotations.rotation_delete(rotation=rotation, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=DefinitionChangeSerializer, responses={201: RotationSerializer})
    @action(detail=True, methods=["post"])
    def definition(self, request, pk=None):
        """Change participants / shift length / handoff / restrictions from `effective_from` on."""
        rotation = self.get_object()
        if not perms.can_manage_team(request.user, rotation.team_id):
            raise PermissionDenied("Only the team's managers and staff change rotations.")
        ser = DefinitionChangeSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        services_rotations.rotation_definition_change(
            rotation=rotation, actor=request.user, **_service_kwargs(ser.validated_data)
        )
        return self._out(rotation, status.HTTP_201_CREATED)


class ExclusionViewSet(viewsets.ModelViewSet):
    """Vacations and other absences. Your own; managers for their members; staff for anyone."""

    serializer_class = ExclusionSerializer
    queryset = Exclusion.objects.none()
    filterset_class = ExclusionFilter
    ordering_fields = ["start", "end", "user"]
    ordering = ["start"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Exclusion.objects.none()
        user = self.request.user
        qs = Exclusion.objects.all()
        if not user.is_staff:
            visible = Membership.objects.filter(team_id__in=perms.user_team_ids(user=user)).values("user_id")
            qs = qs.filter(Q(user=user) | Q(user_id__in=visible))
        return qs.order_by("start", "pk")

    def _check(self, subject) -> None:
        if not perms.can_manage_exclusion_for(self.request.user, subject):
            raise PermissionDenied("You can manage your own exclusions; managers those of their team members.")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.setdefault("user", self.request.user)
        self._check(data["user"])
        serializer.instance = exclusions.exclusion_create(actor=self.request.user, **data)

    def perform_update(self, serializer):
        exclusion = serializer.instance
        self._check(exclusion.user)
        data = dict(serializer.validated_data)
        if "user" in data and data.pop("user").pk != exclusion.user_id:
            raise serializers.ValidationError({"user": ["An exclusion cannot move to another person."]})
        serializer.instance = exclusions.exclusion_update(exclusion=exclusion, actor=self.request.user, **data)

    def perform_destroy(self, instance):
        self._check(instance.user)
        exclusions.exclusion_delete(exclusion=instance, actor=self.request.user)


class OverrideViewSet(viewsets.ModelViewSet):
    """Overrides ("take the pager"). Managers and staff for anyone; engineers for overrides they are in."""

    serializer_class = OverrideSerializer
    queryset = Override.objects.none()
    filterset_class = OverrideFilter
    ordering_fields = ["start", "end"]
    ordering = ["start"]

    def get_queryset(self):
        user = self.request.user
        qs = Override.objects.select_related("rotation")
        if not user.is_staff:
            qs = qs.filter(rotation__team_id__in=perms.user_team_ids(user=user))
        return qs.order_by("start", "pk")

    def _check(self, *, rotation, taker, replaced) -> None:
        if not perms.can_view_team(self.request.user, rotation.team_id):
            raise serializers.ValidationError({"rotation": ["No such rotation."]})
        if not perms.can_manage_override(self.request.user, team=rotation.team_id, taker=taker, replaced=replaced):
            raise PermissionDenied("Engineers can only create overrides they take part in; managers for their team.")

    def _consent_check(self, *, rotation, taker) -> None:
        """Giving a shift away needs the taker's consent: an engineer asks with a swap request. Managers
        and staff run the roster and assign directly."""
        if taker.pk != self.request.user.pk and not perms.can_manage_team(self.request.user, rotation.team_id):
            raise serializers.ValidationError(
                {
                    "user": [
                        "You can only take a shift yourself. To hand yours to a colleague, ask them with a "
                        "swap request (POST /api/v1/swaps/); it becomes an override when they accept."
                    ]
                }
            )

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.setdefault("user", self.request.user)
        self._check(rotation=data["rotation"], taker=data["user"], replaced=data.get("replaces_user"))
        self._consent_check(rotation=data["rotation"], taker=data["user"])
        serializer.instance = overrides.override_create(actor=self.request.user, **data)

    def perform_update(self, serializer):
        override = serializer.instance
        data = dict(serializer.validated_data)
        if "rotation" in data and data.pop("rotation").pk != override.rotation_id:
            raise serializers.ValidationError({"rotation": ["An override cannot move to another rotation."]})
        self._check(rotation=override.rotation, taker=override.user, replaced=override.replaces_user)
        self._check(
            rotation=override.rotation,
            taker=data.get("user", override.user),
            replaced=data.get("replaces_user", override.replaces_user),
        )
        if "user" in data and data["user"].pk != override.user_id:
            self._consent_check(rotation=override.rotation, taker=data["user"])
        serializer.instance = overrides.override_update(override=override, actor=self.request.user, **data)

    def perform_destroy(self, instance):
        self._check(rotation=instance.rotation, taker=instance.user, replaced=instance.replaces_user)
        overrides.override_delete(override=instance, actor=self.request.user)


# --------------------------------------------------------------------------- swap requests


class SwapRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Swap requests the caller asked or was asked ("please take my shifts"); only the colleague's
    acceptance makes an override. Nobody else learns a request exists (404)."""

    serializer_class = SwapRequestSerializer
    queryset = SwapRequest.objects.none()
    filterset_class = SwapRequestFilter
    ordering_fields = ["start", "created_at"]
    ordering = ["start"]

    def get_queryset(self):
        user = self.request.user
        return SwapRequest.objects.filter(Q(requester=user) | Q(taker=user)).order_by("start", "pk")

    def perform_create(self, serializer):
        data = serializer.validated_data
        if not perms.can_view_team(self.request.user, data["rotation"].team_id):
            raise serializers.ValidationError({"rotation": ["No such rotation."]})
        serializer.instance = swaps.swap_request_create(
            rotation=data["rotation"],
            requester=self.request.user,
            taker=data["taker"],
            start=data["start"],
            end=data["end"],
            reason=data.get("reason", ""),
            now=timezone.now(),
        )

    def _answer(self, service) -> Response:
        swap = self.get_object()  # 404 unless the caller is one of the two people
        swap = service(swap_id=swap.pk, actor=self.request.user, now=timezone.now())
        return Response(SwapRequestSerializer(swap).data)

    @extend_schema(request=None, responses=SwapRequestSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        return self._answer(swaps.swap_request_accept)

    @extend_schema(request=None, responses=SwapRequestSerializer)
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        return self._answer(swaps.swap_request_decline)

    @extend_schema(request=None, responses=SwapRequestSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        return self._answer(swaps.swap_request_cancel)


# --------------------------------------------------------------------------- on call and shifts


class MyIcalTokenRotateView(APIView):
    """A new personal calendar feed URL for the caller; the old one stops working at once."""

    @extend_schema(request=None, responses=IcalLinkSerializer)
    def post(self, request):
        token = services_teams.user_ical_token_rotate(user=request.user, actor=request.user)
        return Response(IcalLinkSerializer({"url": _ical_link(request, "ical:user", token)}).data)


class OncallView(APIView):
    """Who holds each position of a team at an instant, until when, and why."""

    @extend_schema(parameters=[OncallQuerySerializer], responses=OncallResponseSerializer)
    def get(self, request):
        query = OncallQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        team = _team_lookup(query.validated_data["team"], request.user)
        at = query.validated_data.get("at") or timezone.now()
        rows = selectors.teams_oncall_rows_get(team_ids=[team.pk], at=at)[team.pk]
        return Response(OncallResponseSerializer({"team": team, "at": at, "positions": rows}).data)


class ShiftsView(APIView):
    """Shifts of a team and/or a person in a window of at most 366 days (overrides and exclusions applied)."""

    @extend_schema(parameters=[ShiftsQuerySerializer], responses=ShiftSerializer(many=True))
    def get(self, request):
        query = ShiftsQuerySerializer(data=request.query_params, context={"now": timezone.now()})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        since, until = params["since"], params["until"]
        viewer = request.user
        if params.get("team"):
            team = _team_lookup(params["team"], viewer)
            data, shifts = selectors.teams_shifts_get(team_ids=[team.pk], since=since, until=until)
            if params.get("user"):
                shifts = [s for s in shifts if s.user_id == params["user"]]
        else:
            subject = User.objects.filter(pk=params["user"]).first()
            if subject is None:
                raise NotFound("No such user.")
            team_ids = None
            if not viewer.is_staff and subject.pk != viewer.pk:
                team_ids = perms.user_team_ids(user=viewer)
                if not Membership.objects.filter(user=subject, team_id__in=team_ids).exists():
                    raise NotFound("No such user.")
            data, shifts = selectors.user_shifts_with_roster_get(
                user=subject, since=since, until=until, team_ids=team_ids
            )
        user_ids = {u for s in shifts for u in (s.user_id, s.scheduled_user_id) if u is not None}
        users = User.objects.in_bulk(user_ids)
        out = []
        for s in shifts:
            covering = None
            if s.reason in ("cover", "override") and s.scheduled_user_id not in (None, s.user_id):
                covering = users.get(s.scheduled_user_id)
            out.append(
                {
                    "team": data.rotation_team[s.rotation_id],
                    "rotation": {"id": s.rotation_id, "name": data.rotation_names[s.rotation_id]},
                    "era": data.era_ids[(s.rotation_id, s.era_index)],
                    "shift_index": s.shift_index,
                    "position": s.position,
                    "user": users.get(s.user_id) if s.user_id is not None else None,
                    "start": s.start,
                    "end": s.end,
                    "reason": str(s.reason),
                    "covering": covering,
                    "override_id": s.override_id,
                    "exclusion_id": s.exclusion_id,
                }
            )
        return Response(ShiftSerializer(out, many=True).data)
