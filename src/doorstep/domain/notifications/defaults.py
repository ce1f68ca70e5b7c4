"""Doorstep's own wording of every recipient message in English, French and Finnish.

Each entry is ``(subject, e-mail body, SMS/chat body)``; all three are Jinja2 templates over
the variables of :data:`doorstep.domain.notifications.templates.VARIABLES`. A merchant's own
template (``message_templates``) replaces one of them for one trigger, channel and language.
"""

from __future__ import annotations

from doorstep.domain.notifications.config import Trigger

T = Trigger

DEFAULTS: dict[str, dict[Trigger, tuple[str, str, str]]] = {
    "en": {
        T.ORDER_CONFIRMED: (
            "Your delivery from {{ merchant_name }}: {{ window }}",
            "Hello {{ recipient_name }},\n\n{{ merchant_name }} will deliver your order "
            "{{ reference }} on {{ window }}.\n\nFollow it here: {{ tracking_url }}\n\n"
            "The attached calendar file keeps the time in your calendar.",
            "{{ merchant_name }}: your order {{ reference }} arrives {{ window }}. "
            "Track: {{ tracking_url }}",
        ),
        T.WINDOW_CHANGED: (
            "New delivery time: {{ window }}",
            "Hello {{ recipient_name }},\n\nYour delivery {{ reference }} from "
            "{{ merchant_name }} is now expected on {{ window }}.\n\n"
            "Not convenient? Choose another time: {{ tracking_url }}",
            "{{ merchant_name }}: new delivery time {{ window }}. {{ tracking_url }}",
        ),
        T.OUT_FOR_DELIVERY: (
            "Out for delivery today: {{ eta_window or window }}",
            "Hello {{ recipient_name }},\n\nYour parcel {{ reference }} is on its way. "
            "Expected between {{ eta_window or window }}.\n\nFollow the driver: {{ tracking_url }}",
            "{{ merchant_name }}: out for delivery, expected {{ eta_window or window }}. "
            "{{ tracking_url }}",
        ),
        T.ARRIVING_SOON: (
            "Arriving soon",
            "Hello {{ recipient_name }},\n\nThe driver is nearly at your door"
            "{% if minutes_away is not none %} (about {{ minutes_away }} min){% endif %}.\n\n"
            "{{ tracking_url }}",
            "{{ merchant_name }}: your parcel arrives in about {{ minutes_away }} min. "
            "{{ tracking_url }}",
        ),
        T.DELAYED: (
            "Your delivery is running late: now {{ eta_window or window }}",
            "Hello {{ recipient_name }},\n\nSorry, your delivery {{ reference }} is running late. "
            "New estimate: {{ eta_window or window }}.\n\n"
            "If that does not suit you, you can choose another day or a safe place here: "
            "{{ tracking_url }}",
            "{{ merchant_name }}: running late, now {{ eta_window or window }}. "
            "Change it: {{ tracking_url }}",
        ),
        T.DELIVERED: (
            "Delivered: {{ reference }}",
            "Hello {{ recipient_name }},\n\nYour order {{ reference }} was delivered"
            "{% if delivered_at %} at {{ delivered_at }}{% endif %}.\n\n"
            "Proof of delivery: {{ proof_url }}",
            "{{ merchant_name }}: delivered. Proof: {{ proof_url }}",
        ),
        T.ATTEMPT_FAILED: (
            "We could not deliver {{ reference }}",
            "Hello {{ recipient_name }},\n\nWe could not deliver your order {{ reference }}: "
            "{{ reason }}.\n\n{{ next_step }}\n\n{{ tracking_url }}",
            "{{ merchant_name }}: delivery failed ({{ reason }}). {{ next_step }} "
            "{{ tracking_url }}",
        ),
    },
    "fr": {
        T.ORDER_CONFIRMED: (
            "Votre livraison {{ merchant_name }} : {{ window }}",
            "Bonjour {{ recipient_name }},\n\n{{ merchant_name }} livrera votre commande "
            "{{ reference }} le {{ window }}.\n\nSuivez-la ici : {{ tracking_url }}\n\n"
            "Le fichier calendrier joint garde ce créneau dans votre agenda.",
            "{{ merchant_name }} : commande {{ reference }} livrée le {{ window }}. "
            "Suivi : {{ tracking_url }}",
        ),
        T.WINDOW_CHANGED: (
            "Nouveau créneau de livraison : {{ window }}",
            "Bonjour {{ recipient_name }},\n\nVotre livraison {{ reference }} de "
            "{{ merchant_name }} est désormais prévue le {{ window }}.\n\n"
            "Ce n'est pas pratique ? Choisissez un autre créneau : {{ tracking_url }}",
            "{{ merchant_name }} : nouveau créneau {{ window }}. {{ tracking_url }}",
        ),
        T.OUT_FOR_DELIVERY: (
            "En cours de livraison : {{ eta_window or window }}",
            "Bonjour {{ recipient_name }},\n\nVotre colis {{ reference }} est en route. "
            "Arrivée prévue entre {{ eta_window or window }}.\n\n"
            "Suivez le livreur : {{ tracking_url }}",
            "{{ merchant_name }} : en cours de livraison, prévu {{ eta_window or window }}. "
            "{{ tracking_url }}",
        ),
        T.ARRIVING_SOON: (
            "Votre colis arrive bientôt",
            "Bonjour {{ recipient_name }},\n\nLe livreur est presque chez vous"
            "{% if minutes_away is not none %} (environ {{ minutes_away }} min){% endif %}.\n\n"
            "{{ tracking_url }}",
            "{{ merchant_name }} : votre colis arrive dans environ {{ minutes_away }} min. "
            "{{ tracking_url }}",
        ),
        T.DELAYED: (
            "Votre livraison a du retard : {{ eta_window or window }}",
            "Bonjour {{ recipient_name }},\n\nDésolés, votre livraison {{ reference }} a du "
            "retard. Nouvelle estimation : {{ eta_window or window }}.\n\n"
            "Si cela ne vous convient pas, choisissez un autre jour ou un lieu sûr ici : "
            "{{ tracking_url }}",
            "{{ merchant_name }} : retard, désormais {{ eta_window or window }}. "
            "Modifier : {{ tracking_url }}",
        ),
        T.DELIVERED: (
            "Livré : {{ reference }}",
            "Bonjour {{ recipient_name }},\n\nVotre commande {{ reference }} a été livrée"
            "{% if delivered_at %} à {{ delivered_at }}{% endif %}.\n\n"
            "Preuve de livraison : {{ proof_url }}",
            "{{ merchant_name }} : livré. Preuve : {{ proof_url }}",
        ),
        T.ATTEMPT_FAILED: (
            "Nous n'avons pas pu livrer {{ reference }}",
            "Bonjour {{ recipient_name }},\n\nNous n'avons pas pu livrer votre commande "
            "{{ reference }} : {{ reason }}.\n\n{{ next_step }}\n\n{{ tracking_url }}",
            "{{ merchant_name }} : échec de livraison ({{ reason }}). {{ next_step }} "
            "{{ tracking_url }}",
        ),
    },
    "fi": {
        T.ORDER_CONFIRMED: (
            "Toimituksesi kauppiaalta {{ merchant_name }}: {{ window }}",
            "Hei {{ recipient_name }},\n\n{{ merchant_name }} toimittaa tilauksesi "
            "{{ reference }} {{ window }}.\n\nSeuraa sitä täällä: {{ tracking_url }}\n\n"
            "Liitteenä oleva kalenteritiedosto tallentaa ajan kalenteriisi.",
            "{{ merchant_name }}: tilauksesi {{ reference }} saapuu {{ window }}. "
            "Seuranta: {{ tracking_url }}",
        ),
        T.WINDOW_CHANGED: (
            "Uusi toimitusaika: {{ window }}",
            "Hei {{ recipient_name }},\n\nToimituksesi {{ reference }} ({{ merchant_name }}) "
            "saapuu nyt {{ window }}.\n\nEikö aika sovi? Valitse toinen: {{ tracking_url }}",
            "{{ merchant_name }}: uusi toimitusaika {{ window }}. {{ tracking_url }}",
        ),
        T.OUT_FOR_DELIVERY: (
            "Jakelussa tänään: {{ eta_window or window }}",
            "Hei {{ recipient_name }},\n\nPakettisi {{ reference }} on matkalla. "
            "Arvioitu saapumisaika {{ eta_window or window }}.\n\n"
            "Seuraa kuljettajaa: {{ tracking_url }}",
            "{{ merchant_name }}: jakelussa, arvio {{ eta_window or window }}. {{ tracking_url }}",
        ),
        T.ARRIVING_SOON: (
            "Pakettisi saapuu pian",
            "Hei {{ recipient_name }},\n\nKuljettaja on melkein perillä"
            "{% if minutes_away is not none %} (noin {{ minutes_away }} min){% endif %}.\n\n"
            "{{ tracking_url }}",
            "{{ merchant_name }}: pakettisi saapuu noin {{ minutes_away }} minuutissa. "
            "{{ tracking_url }}",
        ),
        T.DELAYED: (
            "Toimituksesi on myöhässä: nyt {{ eta_window or window }}",
            "Hei {{ recipient_name }},\n\nPahoittelemme, toimituksesi {{ reference }} on "
            "myöhässä. Uusi arvio: {{ eta_window or window }}.\n\n"
            "Jos aika ei sovi, voit valita toisen päivän tai turvallisen paikan: "
            "{{ tracking_url }}",
            "{{ merchant_name }}: myöhässä, nyt {{ eta_window or window }}. "
            "Muuta: {{ tracking_url }}",
        ),
        T.DELIVERED: (
            "Toimitettu: {{ reference }}",
            "Hei {{ recipient_name }},\n\nTilauksesi {{ reference }} on toimitettu"
            "{% if delivered_at %} {{ delivered_at }}{% endif %}.\n\n"
            "Toimitustodistus: {{ proof_url }}",
            "{{ merchant_name }}: toimitettu. Todistus: {{ proof_url }}",
        ),
        T.ATTEMPT_FAILED: (
            "Emme voineet toimittaa tilausta {{ reference }}",
            "Hei {{ recipient_name }},\n\nEmme voineet toimittaa tilaustasi {{ reference }}: "
            "{{ reason }}.\n\n{{ next_step }}\n\n{{ tracking_url }}",
            "{{ merchant_name }}: toimitus epäonnistui ({{ reason }}). {{ next_step }} "
            "{{ tracking_url }}",
        ),
    },
}

# Confirmations of what the recipient changed themselves (redirect, hold, instructions).
_SELF_SERVICE: dict[str, dict[Trigger, tuple[str, str, str]]] = {
    "en": {
        T.REDIRECTED: (
            "Your delivery will go to {{ destination }}",
            "Hello {{ recipient_name }},\n\nDone: your delivery {{ reference }} from "
            "{{ merchant_name }} will go to {{ destination }}.\n\n"
            "Changed your mind? {{ tracking_url }}",
            "{{ merchant_name }}: your delivery will go to {{ destination }}. "
            "Change: {{ tracking_url }}",
        ),
        T.HELD: (
            "Your delivery is on hold until {{ held_until }}",
            "Hello {{ recipient_name }},\n\nDone: we hold your delivery {{ reference }} "
            "until {{ held_until }}; choose a new delivery time here: {{ tracking_url }}",
            "{{ merchant_name }}: your delivery is on hold until {{ held_until }}. "
            "New time: {{ tracking_url }}",
        ),
        T.INSTRUCTIONS_CHANGED: (
            "Delivery instructions updated",
            "Hello {{ recipient_name }},\n\n"
            "{% if instructions %}The driver will see your new instructions for {{ reference }}: "
            "{{ instructions }}{% else %}Your delivery instructions for {{ reference }} were "
            "removed.{% endif %}\n\n{{ tracking_url }}",
            "{{ merchant_name }}: {% if instructions %}new instructions: {{ instructions }}"
            "{% else %}instructions removed{% endif %}. {{ tracking_url }}",
        ),
    },
    "fr": {
        T.REDIRECTED: (
            "Votre livraison ira {{ destination }}",
            "Bonjour {{ recipient_name }},\n\nC'est noté : votre livraison {{ reference }} de "
            "{{ merchant_name }} ira {{ destination }}.\n\n"
            "Vous changez d'avis ? {{ tracking_url }}",
            "{{ merchant_name }} : votre livraison ira {{ destination }}. "
            "Modifier : {{ tracking_url }}",
        ),
        T.HELD: (
            "Votre livraison est suspendue jusqu'au {{ held_until }}",
            "Bonjour {{ recipient_name }},\n\nC'est noté : nous gardons votre livraison "
            "{{ reference }} jusqu'au {{ held_until }} ; choisissez un nouveau créneau ici : "
            "{{ tracking_url }}",
            "{{ merchant_name }} : livraison suspendue jusqu'au {{ held_until }}. "
            "Nouveau créneau : {{ tracking_url }}",
        ),
        T.INSTRUCTIONS_CHANGED: (
            "Instructions de livraison mises à jour",
            "Bonjour {{ recipient_name }},\n\n"
            "{% if instructions %}Le livreur verra vos nouvelles instructions pour "
            "{{ reference }} : {{ instructions }}{% else %}Vos instructions de livraison pour "
            "{{ reference }} ont été supprimées.{% endif %}\n\n{{ tracking_url }}",
            "{{ merchant_name }} : {% if instructions %}nouvelles instructions : "
            "{{ instructions }}{% else %}instructions supprimées{% endif %}. {{ tracking_url }}",
        ),
    },
    "fi": {
        T.REDIRECTED: (
            "Toimituksesi menee: {{ destination }}",
            "Hei {{ recipient_name }},\n\nSelvä: toimituksesi {{ reference }} "
            "({{ merchant_name }}) menee: {{ destination }}.\n\n"
            "Muutitko mielesi? {{ tracking_url }}",
            "{{ merchant_name }}: toimituksesi menee: {{ destination }}. Muuta: {{ tracking_url }}",
        ),
        T.HELD: (
            "Toimituksesi on pidossa {{ held_until }} asti",
            "Hei {{ recipient_name }},\n\nSelvä: pidämme toimitustasi {{ reference }} "
            "{{ held_until }} asti; valitse uusi toimitusaika täältä: {{ tracking_url }}",
            "{{ merchant_name }}: toimitus pidossa {{ held_until }} asti. "
            "Uusi aika: {{ tracking_url }}",
        ),
        T.INSTRUCTIONS_CHANGED: (
            "Toimitusohjeet päivitetty",
            "Hei {{ recipient_name }},\n\n"
            "{% if instructions %}Kuljettaja näkee uudet ohjeesi toimitukselle {{ reference }}: "
            "{{ instructions }}{% else %}Toimituksen {{ reference }} ohjeet poistettiin."
            "{% endif %}\n\n{{ tracking_url }}",
            "{{ merchant_name }}: {% if instructions %}uudet ohjeet: {{ instructions }}"
            "{% else %}ohjeet poistettu{% endif %}. {{ tracking_url }}",
        ),
    },
}
for _locale, _more in _SELF_SERVICE.items():
    DEFAULTS[_locale].update(_more)

# Where a redirected delivery goes, by the redirect's kind: neighbour, safe place, pickup point.
DESTINATIONS: dict[str, dict[str, str]] = {
    "en": {
        "neighbour": "your neighbour {name}, no. {house_number}",
        "safe_place": "a safe place: {place}",
        "pickup_point": "the pickup point {name}, {line1}, {city}",
    },
    "fr": {
        "neighbour": "chez votre voisin {name}, n° {house_number}",
        "safe_place": "à un lieu sûr : {place}",
        "pickup_point": "au point relais {name}, {line1}, {city}",
    },
    "fi": {
        "neighbour": "naapurillesi {name}, nro {house_number}",
        "safe_place": "turvalliseen paikkaan: {place}",
        "pickup_point": "noutopisteeseen {name}, {line1}, {city}",
    },
}

REASONS: dict[str, dict[str, str]] = {
    "en": {
        "consignee_not_home": "nobody was at home",
        "consignee_access_restricted": "the driver could not get in",
        "consignee_incorrect_address": "the address seems to be wrong",
        "carrier_address_not_found": "the driver could not find the address",
        "carrier_not_enough_time": "the driver ran out of time",
        "consignee_refused": "the parcel was refused",
    },
    "fr": {
        "consignee_not_home": "personne n'était présent",
        "consignee_access_restricted": "le livreur n'a pas pu accéder au lieu",
        "consignee_incorrect_address": "l'adresse semble erronée",
        "carrier_address_not_found": "le livreur n'a pas trouvé l'adresse",
        "carrier_not_enough_time": "le livreur a manqué de temps",
        "consignee_refused": "le colis a été refusé",
    },
    "fi": {
        "consignee_not_home": "kukaan ei ollut kotona",
        "consignee_access_restricted": "kuljettaja ei päässyt sisään",
        "consignee_incorrect_address": "osoite näyttää olevan väärä",
        "carrier_address_not_found": "kuljettaja ei löytänyt osoitetta",
        "carrier_not_enough_time": "kuljettajan aika loppui",
        "consignee_refused": "paketista kieltäydyttiin",
    },
}

NEXT_STEP: dict[str, str] = {
    "en": "We will try again on the next delivery day, or you can pick another time or a "
    "safe place with the link below.",
    "fr": "Nous réessaierons au prochain jour de livraison, ou choisissez un autre créneau ou "
    "un lieu sûr avec le lien ci-dessous.",
    "fi": "Yritämme uudelleen seuraavana jakelupäivänä, tai voit valita toisen ajan tai "
    "turvallisen paikan alla olevasta linkistä.",
}

UNSUBSCRIBE_LABEL = {
    "en": ("Track your delivery", "Message preferences or unsubscribe"),
    "fr": ("Suivre ma livraison", "Préférences de messages ou désinscription"),
    "fi": ("Seuraa toimitusta", "Viestiasetukset tai tilauksen peruminen"),
}

LOCALES = tuple(DEFAULTS)
