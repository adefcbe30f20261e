-- AlterTable
ALTER TABLE "Client" ADD COLUMN     "dynamic" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "firstParty" BOOLEAN NOT NULL DEFAULT false;

-- Clients registered through dynamic registration are the ones holding a registration access token.
UPDATE "Client" SET "dynamic" = true WHERE "id" IN (SELECT "clientId" FROM "OidcPayload" WHERE "model" = 'RegistrationAccessToken' AND "clientId" IS NOT NULL);
