"""SMPP 3.4 PDUs through smpplib's codec: the few we send, parsing what arrives, status names."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from smpplib import command_codes, consts, smpp

HEADER = struct.Struct(">LLLL")  # command_length, command_id, command_status, sequence_number
MAX_PDU = 64 * 1024  # far above any legal PDU; a larger length means a corrupt stream

SUBMIT_SM = command_codes.get_command_code("submit_sm")
DELIVER_SM = command_codes.get_command_code("deliver_sm")
ENQUIRE_LINK = command_codes.get_command_code("enquire_link")
ENQUIRE_LINK_RESP = command_codes.get_command_code("enquire_link_resp")
UNBIND = command_codes.get_command_code("unbind")
UNBIND_RESP = command_codes.get_command_code("unbind_resp")
GENERIC_NACK = command_codes.get_command_code("generic_nack")
RESPONSE_BIT = 0x80000000

ESME_ROK = consts.SMPP_ESME_ROK
ESME_RINVCMDID = consts.SMPP_ESME_RINVCMDID
ESME_RX_T_APPN = consts.SMPP_ESME_RX_T_APPN
ESME_RX_P_APPN = consts.SMPP_ESME_RX_P_APPN

# Statuses where the same submit may well succeed later: the ledger retries with backoff.
TRANSIENT_STATUSES = frozenset(
    {
        consts.SMPP_ESME_RTHROTTLED,  # 0x58
        consts.SMPP_ESME_RMSGQFUL,  # 0x14
        consts.SMPP_ESME_RSYSERR,  # 0x08
        consts.SMPP_ESME_RINVBNDSTS,  # 0x04: we raced a re-bind
        consts.SMPP_ESME_RX_T_APPN,  # 0x64: "temporary application error"
        consts.SMPP_ESME_RUNKNOWNERR,  # 0xFF
    }
)

STATUS_NAMES: dict[int, str] = {
    getattr(consts, attr): attr.removeprefix("SMPP_")
    for attr in dir(consts)
    if attr.startswith("SMPP_ESME_R")
}


def status_name(status: int) -> str:
    """``ESME_RINVDSTADR (0x0000000B)`` for a command_status."""
    return f"{STATUS_NAMES.get(status, 'ESME_UNKNOWN')} (0x{status:08X})"


def _generate(command: str, sequence: int, **fields: Any) -> bytes:
    # smpplib ignores a sequence passed as a keyword; it must be assigned after construction.
    pdu = smpp.make_pdu(command, client=None, sequence=0, **fields)
    pdu.sequence = sequence
    return bytes(pdu.generate())


def bind_transceiver(sequence: int, *, system_id: str, password: str, system_type: str) -> bytes:
    """A bind_transceiver PDU (interface version 3.4)."""
    return _generate(
        "bind_transceiver",
        sequence,
        system_id=system_id,
        password=password,
        system_type=system_type,
        interface_version=0x34,
    )


@dataclass(frozen=True)
class Address:
    """An SMPP address with its type of number and numbering plan."""

    ton: int
    npi: int
    addr: str


def submit_sm(
    sequence: int,
    *,
    source: Address,
    destination: Address,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
) -> bytes:
    """A submit_sm asking for a delivery receipt (registered_delivery=1).

    Packed directly rather than through smpplib (whose generic encoder costs ~60 µs a PDU,
    the bulk of a send); tests check it byte for byte against ``submit_sm_smpplib``.
    """
    if len(short_message) > 254:
        raise ValueError("short_message is longer than 254 octets")
    body = b"".join(
        (
            b"\x00",  # service_type: default
            bytes((source.ton, source.npi)),
            source.addr.encode("ascii")[:20] + b"\x00",
            bytes((destination.ton, destination.npi)),
            destination.addr.encode("ascii")[:20] + b"\x00",
            # esm_class, protocol_id, priority_flag, schedule_delivery_time "",
            # validity_period "", registered_delivery, replace_if_present_flag, data_coding,
            # sm_default_msg_id, sm_length
            bytes((esm_class, 0, 0, 0, 0, 1, 0, data_coding, 0, len(short_message))),
            short_message,
        )
    )
    return HEADER.pack(16 + len(body), SUBMIT_SM, ESME_ROK, sequence) + body


def submit_sm_smpplib(
    sequence: int,
    *,
    source: Address,
    destination: Address,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
) -> bytes:
    """The same submit_sm through smpplib's encoder (the reference ``submit_sm`` must match)."""
    return _generate(
        "submit_sm",
        sequence,
        source_addr_ton=source.ton,
        source_addr_npi=source.npi,
        source_addr=source.addr,
        dest_addr_ton=destination.ton,
        dest_addr_npi=destination.npi,
        destination_addr=destination.addr,
        esm_class=esm_class,
        registered_delivery=1,
        data_coding=data_coding,
        short_message=short_message,
    )


def simple(command: str, sequence: int, status: int = ESME_ROK) -> bytes:
    """A body-less PDU: enquire_link(_resp), unbind(_resp), generic_nack."""
    return HEADER.pack(16, command_codes.get_command_code(command), status, sequence)


def deliver_sm_resp(sequence: int, status: int = ESME_ROK) -> bytes:
    """The answer to a deliver_sm (message_id is unused and empty)."""
    body = b"\x00"
    return HEADER.pack(16 + len(body), DELIVER_SM | RESPONSE_BIT, status, sequence) + body


@dataclass(frozen=True)
class Response:
    """A response PDU: its status and, for submit_sm_resp, the message id."""

    command_id: int
    status: int
    sequence: int
    message_id: str = ""

    @property
    def command(self) -> str:
        """The command's name (for error texts)."""
        return str(command_codes.get_command_name(self.command_id))


def parse_response(data: bytes) -> Response:
    """Decode a response PDU: header plus the leading C-octet string (system_id/message_id).

    Done by hand because one arrives per submit; ``tests`` check it against smpplib.
    """
    _length, command_id, status, sequence = HEADER.unpack_from(data)
    end = data.find(b"\x00", 16)
    message_id = data[16 : end if end >= 0 else len(data)].decode("latin-1")
    return Response(command_id, status, sequence, message_id)


@dataclass(frozen=True)
class DeliverSm:
    """The deliver_sm fields a receipt needs."""

    esm_class: int
    short_message: bytes
    receipted_message_id: str | None = None
    message_state: int | None = None


TAG_RECEIPTED_MESSAGE_ID = consts.OPTIONAL_PARAMS["receipted_message_id"]  # 0x001E
TAG_MESSAGE_STATE = consts.OPTIONAL_PARAMS["message_state"]  # 0x0427


def parse_deliver_sm(data: bytes) -> DeliverSm:
    """Decode a deliver_sm (one arrives per receipt; ``tests`` check it against smpplib)."""
    find = data.index
    pos = find(b"\x00", 16) + 3  # service_type, source_addr_ton, source_addr_npi
    pos = find(b"\x00", pos) + 3  # source_addr, dest_addr_ton, dest_addr_npi
    pos = find(b"\x00", pos) + 1  # destination_addr
    esm_class = data[pos]
    pos += 3  # esm_class, protocol_id, priority_flag
    pos = find(b"\x00", pos) + 1  # schedule_delivery_time
    pos = find(b"\x00", pos) + 1  # validity_period
    pos += 4  # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
    sm_length = data[pos]
    short_message = data[pos + 1 : pos + 1 + sm_length]
    pos += 1 + sm_length
    receipted: str | None = None
    state: int | None = None
    while pos + 4 <= len(data):
        tag, size = TLV_HEADER.unpack_from(data, pos)
        value = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if tag == TAG_RECEIPTED_MESSAGE_ID:
            receipted = value.rstrip(b"\x00").decode("latin-1")
        elif tag == TAG_MESSAGE_STATE and size == 1:
            state = value[0]
    return DeliverSm(esm_class, bytes(short_message), receipted, state)


TLV_HEADER = struct.Struct(">HH")


def parse(data: bytes) -> Any:
    """Decode a whole PDU with smpplib (the reference the hand decoders are tested against)."""
    return smpp.parse_pdu(data, client=None, sequence=0, allow_unknown_opt_params=True)
