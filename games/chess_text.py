"""Chess text formats: FEN checking, move-text normalisation, PGN writing.

Pure Python, no open_spiel: `games.chess` calls these before handing a FEN to
open_spiel (whose own parser aborts with a bare CHECK failure and accepts
positions that break its move generator, such as the side not to move being
in check, where it then offers moves that capture the king).

Boards here are lists of 64 one-letter strings ('.' empty, 'PNBRQK' White,
'pnbrqk' Black), index = rank * 8 + file, rank 0 = rank 1, file 0 = file a.
"""

from __future__ import annotations

import re

from games.base import GameError, parse_count

FILES = "abcdefgh"
START_FEN = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"

UCI_MOVE = re.compile(r"[a-h][1-8][a-h][1-8][qrbnQRBN]?")
SAN_MOVE = re.compile(
    r"(?:[NBRQK]?[a-h]?[1-8]?x?[a-h][1-8](?:=?[NBRQ])?|[O0]-[O0](?:-[O0])?)[+#]?[!?]{0,2}")

_KNIGHT = ((1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2))
_KING = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))
_ROOK_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))
_BISHOP_DIRS = ((1, 1), (-1, 1), (-1, -1), (1, -1))
# Castling right letter -> (king square, rook square, king letter, rook letter).
_CASTLING = {"K": (4, 7, "K", "R"), "Q": (4, 0, "K", "R"),
             "k": (60, 63, "k", "r"), "q": (60, 56, "k", "r")}


def square_name(square: int) -> str:
    """'e4' for square index 28."""
    return FILES[square % 8] + str(square // 8 + 1)


def parse_board(placement: str) -> list[str]:
    """The 64 squares of a FEN piece-placement field (GameError if malformed)."""
    ranks = placement.split("/")
    if len(ranks) != 8:
        raise GameError(f"bad FEN board {placement!r}: expected 8 ranks separated by '/', "
                        f"got {len(ranks)}")
    board = ["."] * 64
    for i, text in enumerate(ranks):
        rank, file = 7 - i, 0
        for ch in text:
            if ch in "12345678":
                file += int(ch)
            elif ch in "PNBRQKpnbrqk":
                if file < 8:
                    board[rank * 8 + file] = ch
                file += 1
            else:
                raise GameError(f"bad FEN board: unexpected character {ch!r} in rank "
                                f"{rank + 1} ({text!r})")
        if file != 8:
            raise GameError(f"bad FEN board: rank {rank + 1} ({text!r}) has {file} squares, "
                            "expected 8")
    return board


def is_attacked(board: list[str], square: int, by_white: bool) -> bool:
    """Whether a piece of the given colour attacks `square` (pins ignored)."""
    rank, file = divmod(square, 8)

    def piece_at(r: int, f: int) -> str:
        return board[r * 8 + f] if 0 <= r < 8 and 0 <= f < 8 else ""

    def own(letter: str) -> str:
        return letter.upper() if by_white else letter

    pawn_rank = rank - 1 if by_white else rank + 1
    if own("p") in (piece_at(pawn_rank, file - 1), piece_at(pawn_rank, file + 1)):
        return True
    for steps, letter in ((_KNIGHT, "n"), (_KING, "k")):
        if any(piece_at(rank + dr, file + df) == own(letter) for df, dr in steps):
            return True
    for dirs, letters in ((_ROOK_DIRS, "rq"), (_BISHOP_DIRS, "bq")):
        for df, dr in dirs:
            r, f = rank + dr, file + df
            while 0 <= r < 8 and 0 <= f < 8:
                piece = board[r * 8 + f]
                if piece != ".":
                    if piece in (own(letters[0]), own(letters[1])):
                        return True
                    break
                r, f = r + dr, f + df
    return False


MAX_FEN_COUNTER = 100_000
"""FEN move counters must be below this: no game is that long, and open_spiel reads
them with C++ stoi (int32), which failed on bigger ones as an internal error."""


def normalize_fen(fen: str) -> str:
    """Checks a FEN and returns it with single spaces (4-field EPD gets ' 0 1').

    Raises:
      GameError: a one-line message naming what is wrong, for a malformed FEN or
        an impossible position (kings, pawns on the back ranks, the side not to
        move in check, castling rights without king and rook at home, an en
        passant square without the pawn that just moved past it).
    """
    fields = str(fen).split()
    if len(fields) == 4:
        fields += ["0", "1"]
    if len(fields) != 6:
        raise GameError(f"bad FEN {fen!r}: expected 6 fields (board, side, castling, "
                        f"en passant, halfmove clock, fullmove number), got {len(fields)}")
    placement, side, castling, ep, halfmove, fullmove = fields
    board = parse_board(placement)
    if side not in ("w", "b"):
        raise GameError(f"bad FEN side to move {side!r}: expected 'w' or 'b'")
    for king in "Kk":
        if board.count(king) != 1:
            colour = "White" if king == "K" else "Black"
            raise GameError(f"bad FEN position: {colour} must have exactly one king, "
                            f"found {board.count(king)}")
    if any(board[sq] in "Pp" for sq in list(range(8)) + list(range(56, 64))):
        raise GameError("bad FEN position: a pawn stands on the first or last rank")
    waiting = "k" if side == "w" else "K"
    if is_attacked(board, board.index(waiting), by_white=side == "w"):
        raise GameError("bad FEN position: the side not to move is in check")
    _check_castling(board, castling)
    _check_en_passant(board, side, ep)
    clock, number = (parse_count(c, MAX_FEN_COUNTER) for c in (halfmove, fullmove))
    if clock is None or number is None or number < 1:
        raise GameError(f"bad FEN counters {halfmove!r} {fullmove!r}: expected a halfmove "
                        f"clock >= 0 and a fullmove number >= 1, in ASCII digits, below "
                        f"{MAX_FEN_COUNTER}")
    return " ".join(fields)


def _check_castling(board: list[str], castling: str) -> None:
    if castling == "-":
        return
    if not castling or len(set(castling)) != len(castling) or set(castling) - set("KQkq"):
        raise GameError(f"bad FEN castling rights {castling!r}: expected '-' or letters "
                        "from 'KQkq'")
    for right in castling:
        king, rook, king_letter, rook_letter = _CASTLING[right]
        if board[king] != king_letter or board[rook] != rook_letter:
            raise GameError(f"bad FEN castling right {right!r}: needs the king on "
                            f"{square_name(king)} and a rook on {square_name(rook)}")


def _check_en_passant(board: list[str], side: str, ep: str) -> None:
    if ep == "-":
        return
    wanted_rank = "6" if side == "w" else "3"
    if len(ep) != 2 or ep[0] not in FILES or ep[1] != wanted_rank:
        raise GameError(f"bad FEN en passant square {ep!r}: expected '-' or a square on "
                        f"rank {wanted_rank} with {'White' if side == 'w' else 'Black'} "
                        "to move")
    square = FILES.index(ep[0]) + 8 * (int(ep[1]) - 1)
    step = -8 if side == "w" else 8  # towards the pawn that just moved
    pawn = "p" if side == "w" else "P"
    if board[square] != "." or board[square - step] != "." or board[square + step] != pawn:
        raise GameError(f"bad FEN en passant square {ep!r}: no pawn has just moved past it")


def san_key(text: str) -> str:
    """SAN reduced for comparison: no check, capture, '=' or annotation marks; 0-0 as O-O."""
    return re.sub(r"[+#!?x=]", "", text.strip()).replace("0", "O")


# PGN.

RESULTS = ("1-0", "0-1", "1/2-1/2", "*")
SEVEN_TAGS = ("Event", "Site", "Date", "Round", "White", "Black", "Result")
_DEFAULTS = {"Event": "?", "Site": "?", "Date": "????.??.??", "Round": "?",
             "White": "?", "Black": "?"}


def pgn_tag(name: str, value) -> str:
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'[{name} "{escaped}"]'


def pgn_tags(headers: dict, result: str) -> tuple[dict, str | None]:
    """(PGN tags, checked FEN or None) from arena headers: 'First' -> White,
    'Second' -> Black, 'FEN' -> SetUp and FEN; the others kept as they are."""
    if result not in RESULTS:
        raise GameError(f"bad PGN result {result!r}: expected one of {', '.join(RESULTS)}")
    headers = dict(headers)
    tags = {}
    if "First" in headers:
        tags["White"] = headers.pop("First")
    if "Second" in headers:
        tags["Black"] = headers.pop("Second")
    fen = headers.pop("FEN", None)
    tags.update({k: v for k, v in headers.items() if k not in ("SetUp", "Result")})
    if fen is not None:
        fen = normalize_fen(fen)
        tags.update(SetUp="1", FEN=fen)
    return tags, fen


def format_pgn(tags: dict, sans: list[str], result: str, fullmove: int, black_first: bool,
               comment: str = "", width: int = 80) -> str:
    """A PGN game: the Seven Tag Roster first, then the other tags, then movetext.

    Args:
      tags: tag name -> value; missing roster tags get PGN's '?' defaults.
      sans: the moves in SAN, from the start position.
      result: '1-0', '0-1', '1/2-1/2' or '*'.
      fullmove: the move number of the first move.
      black_first: whether Black plays the first move ('12... e5').
      comment: text of a {comment} put after the last move, if any.
      width: movetext lines are at most this long.
    """
    tags = {**_DEFAULTS, **tags, "Result": result}
    lines = [pgn_tag(n, tags[n]) for n in SEVEN_TAGS]
    lines += [pgn_tag(n, v) for n, v in tags.items() if n not in SEVEN_TAGS]
    tokens = []
    for i, san in enumerate(sans):
        ply = i + int(black_first)
        number = fullmove + ply // 2
        if ply % 2 == 0:
            tokens.append(f"{number}.")
        elif i == 0:
            tokens.append(f"{number}...")
        tokens.append(san)
    if comment:
        tokens.append("{" + comment.replace("}", ")") + "}")
    tokens.append(result)
    lines.append("")
    lines += _wrap(tokens, width)
    return "\n".join(lines) + "\n"


def _wrap(tokens: list[str], width: int) -> list[str]:
    lines, line = [], ""
    for token in tokens:
        if line and len(line) + 1 + len(token) > width:
            lines.append(line)
            line = token
        else:
            line = f"{line} {token}" if line else token
    lines.append(line)
    return lines
